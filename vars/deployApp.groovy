// deployApp: ship the app in this workspace to Kubernetes with `pysteps deploy`.
// Thin on purpose: defaults merged once, the rest of the map is spec fields handed to pysteps
// as JSON, secrets only through withCredentials, the result read back (see pystepsCli).

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        specFile       : 'deploy.yaml',   // the app spec in the repository
        repo           : '.',             // the app's git checkout
        commit         : null,            // default: the checkout's HEAD
        dryRun         : false,
        rollback       : true,
        lockWaitSeconds: 600,
    ]
    Map cfg = defaults + config
    // Everything that is not a step option is a spec field, merged over deploy.yaml by pysteps.
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) }

    List<String> args = ['deploy', '--repo', "${cfg.repo}", '--file', "${cfg.specFile}",
                         '--overrides', '@work/overrides.json',
                         '--lock-wait', "${cfg.lockWaitSeconds}"]
    if (cfg.commit) { args += ['--commit', "${cfg.commit}"] }
    if (cfg.dryRun) { args << '--dry-run' }
    if (!cfg.rollback) { args << '--no-rollback' }

    Map result = pystepsCli(step: 'deployApp', args: args, files: ['overrides.json': overrides],
                            result: true, credentials: pystepsCli.credentials(cfg), options: cfg)
    String what = result.image ?: "commit ${result.commit}"
    pystepsCli.describeBuild("${cfg.dryRun ? 'planned' : 'deployed'} ${result.namespace}/${result.name}: ${what}")
    return result
}
