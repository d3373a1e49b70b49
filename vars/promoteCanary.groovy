// promoteCanary: roll the app to its canary's version, then remove the canary
// (`pysteps canary promote`). The app's spec (deploy.yaml, plus the map's spec fields) is
// deployed at the commit the canary runs; given the tested image, the result must be it.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        name           : null,            // the app (not <name>-canary)
        namespace      : 'default',
        from           : null,            // a buildImage result: the image production must get
        image          : null,            // or that repository@sha256:... directly
        specFile       : 'deploy.yaml',
        repo           : '.',
        lockWaitSeconds: 600,
    ]
    Map cfg = defaults + config
    if (!cfg.name) {
        error('promoteCanary: name is required (the app whose canary to promote)')
    }
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) } + [namespace: cfg.namespace]
    // Options first; after `--` the app's name is an operand even if it starts with '-'.
    List<String> args = ['canary', 'promote', '--namespace', "${cfg.namespace}", '--repo', "${cfg.repo}",
                         '--file', "${cfg.specFile}", '--overrides', '@work/overrides.json',
                         '--lock-wait', "${cfg.lockWaitSeconds}", '--', "${cfg.name}"]
    Map result = pystepsCli(step: 'promoteCanary', args: args, files: ['overrides.json': overrides],
                            result: true, credentials: pystepsCli.credentials(cfg), options: cfg)
    String image = cfg.image ?: (cfg.from ?: [:]).image
    if (image && result.image != image) {
        error("promoteCanary: ${cfg.namespace}/${cfg.name} got ${result.image}, not the tested ${image}")
    }
    pystepsCli.describeBuild("promoted the canary of ${result.namespace}/${result.name}: " +
                             "${result.image ?: "commit ${result.commit}"}")
    return result
}
