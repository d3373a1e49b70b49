// rollbackApp: put an app's previous revision (or toRevision) back with `pysteps rollback`.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        name      : null,
        namespace : 'default',
        toRevision: null,
        timeoutSeconds: 300,
    ]
    Map cfg = defaults + config
    List unknown = (config.keySet() - defaults.keySet()) as List
    if (unknown) {
        error("rollbackApp: unknown option(s) ${unknown.join(', ')}; see rollbackApp's help")
    }
    if (!cfg.name) {
        error('rollbackApp: name is required (the app to roll back)')
    }
    List<String> args = ['rollback', "${cfg.name}", '--namespace', "${cfg.namespace}",
                         '--timeout', "${cfg.timeoutSeconds}"]
    if (cfg.toRevision != null) { args += ['--to-revision', "${cfg.toRevision}"] }
    pystepsCli(step: 'rollbackApp', args: args, credentials: pystepsCli.credentials(cfg), options: cfg)
    pystepsCli.describeBuild("rolled back ${cfg.namespace}/${cfg.name}" +
                             (cfg.toRevision != null ? " to revision ${cfg.toRevision}" : ''))
    return [ok: true, name: cfg.name, namespace: cfg.namespace]
}
