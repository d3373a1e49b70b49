// abortCanary: take the app's canary out (`pysteps canary abort`): every request goes to the
// app again at once, then the canary's workload and Service are removed.
// ifRunning: true (for post { unsuccessful }) first asks `pysteps canary status` and does
// nothing when no canary runs (its exit 3), instead of failing.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        name     : null,
        namespace: 'default',
        ifRunning: false,
    ]
    Map cfg = defaults + config
    List unknown = (config.keySet() - defaults.keySet()) as List
    if (unknown) {
        error("abortCanary: unknown option(s) ${unknown.join(', ')}; see abortCanary's help")
    }
    if (!cfg.name) {
        error('abortCanary: name is required (the app whose canary to abort)')
    }
    List credentials = pystepsCli.credentials(cfg)
    List<String> app = ['--namespace', "${cfg.namespace}", '--', "${cfg.name}"]
    if (cfg.ifRunning) {
        Map status = pystepsCli(step: 'abortCanary', args: ['canary', 'status'] + app, acceptExit: [3],
                                credentials: credentials, options: cfg)
        if (status.exit == 3) {
            echo "abortCanary: ${status.error ?: "${cfg.namespace}/${cfg.name} has no canary running"}: nothing to abort"
            return [ok: true, aborted: false, name: cfg.name, namespace: cfg.namespace]
        }
    }
    pystepsCli(step: 'abortCanary', args: ['canary', 'abort'] + app, credentials: credentials, options: cfg)
    pystepsCli.describeBuild("aborted the canary of ${cfg.namespace}/${cfg.name}")
    return [ok: true, aborted: true, name: cfg.name, namespace: cfg.namespace]
}
