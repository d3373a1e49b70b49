// canaryApp: run a version of the app as its canary (`pysteps deploy --canary WEIGHT`): a
// second, one-replica workload `<name>-canary` that takes WEIGHT percent of the app's requests.
// The map is handled as deployApp's (step options here, every other key a spec field); given
// the tested image (from: buildImage's result) it goes through promoteApp's digest check, so
// the canary runs exactly that digest. Then promoteCanary or abortCanary.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        weight         : null,            // percent of the app's requests, 1-99 (pysteps checks it)
        from           : null,            // a buildImage result: image + commit
        image          : null,            // repository@sha256:... that passed
        commit         : null,            // the version; default: the checkout's HEAD
        specFile       : 'deploy.yaml',
        repo           : '.',
        dryRun         : false,
        rollback       : true,
        lockWaitSeconds: 600,
    ]
    Map cfg = defaults + config
    if (cfg.weight == null) {
        error('canaryApp: weight is required: the percent of the requests the canary takes (1-99)')
    }
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) }
    Map files = ['overrides.json': overrides]
    boolean tested = cfg.from || cfg.image
    Map release = tested ? promoteApp.testedRelease('canaryApp', cfg) : [commit: cfg.commit]

    List<String> args = ['deploy', '--repo', "${cfg.repo}", '--file', "${cfg.specFile}",
                         '--overrides', '@work/overrides.json', '--lock-wait', "${cfg.lockWaitSeconds}",
                         '--canary', "${cfg.weight}"]
    if (release.commit) { args += ['--commit', "${release.commit}"] }
    if (!cfg.rollback) { args << '--no-rollback' }

    Map result
    if (tested) {
        result = promoteApp.deployTested('canaryApp', 'the canary', release.image as String, args, files,
                                         cfg, cfg.dryRun as boolean)
    } else {
        result = pystepsCli(step: 'canaryApp', args: cfg.dryRun ? args + ['--dry-run'] : args, files: files,
                            result: true, credentials: pystepsCli.credentials(cfg), options: cfg)
    }
    String what = result.image ?: "commit ${result.commit}"
    pystepsCli.describeBuild("${cfg.dryRun ? 'planned' : 'started'} canary ${result.namespace}/${result.name} " +
                             "at ${cfg.weight} %: ${what}")
    return result
}
