// promoteApp: deploy to the next environment exactly the image that passed the previous one.
// It first asks pysteps for a plan (--dry-run) and refuses when the registry's image for the
// commit is not the tested digest, so production never gets a rebuild; then it deploys and
// checks the digest again (deployTested, which canaryApp uses too).

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        from           : null,            // a buildImage/deployApp result: image + commit
        image          : null,            // repository@sha256:... that passed
        commit         : null,            // the commit it was built from
        namespace      : null,            // the environment to promote to
        specFile       : 'deploy.yaml',
        repo           : '.',
        rollback       : true,
        lockWaitSeconds: 600,
    ]
    Map cfg = defaults + config
    Map tested = testedRelease('promoteApp', cfg)
    if (!cfg.namespace) {
        error('promoteApp: namespace is required: the environment to promote to')
    }
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) } + [namespace: cfg.namespace]

    List<String> args = ['deploy', '--repo', "${cfg.repo}", '--file', "${cfg.specFile}",
                         '--overrides', '@work/overrides.json', '--commit', "${tested.commit}",
                         '--lock-wait', "${cfg.lockWaitSeconds}"]
    if (!cfg.rollback) { args << '--no-rollback' }
    Map result = deployTested('promoteApp', "${cfg.namespace}", tested.image as String, args,
                              ['overrides.json': overrides], cfg, false)
    pystepsCli.describeBuild("promoted ${tested.image} to ${result.namespace}/${result.name}")
    return result
}

/** The tested image (repository@sha256:...) and its commit, from `from:` or image/commit. */
Map testedRelease(String step, Map cfg) {
    Map from = cfg.from ?: [:]
    String image = cfg.image ?: from.image
    String commit = cfg.commit ?: from.commit
    if (!image || !image.contains('@sha256:')) {
        error("${step}: image must be the tested repository@sha256:... (from: buildImage's result); got '${image}'")
    }
    if (!commit) {
        error("${step}: commit is required (from: buildImage's result)")
    }
    return [image: image, commit: commit]
}

/**
 * Run `pysteps deploy ARGS` so that WHERE gets exactly IMAGE: a plan first (--dry-run), refused
 * (nothing changed) unless it runs IMAGE; then the deploy, whose image is checked again.
 * planOnly: stop after the checked plan and return it.
 */
Map deployTested(String step, String where, String image, List<String> args, Map files, Map cfg,
                 boolean planOnly) {
    List credentials = pystepsCli.credentials(cfg)
    Map plan = pystepsCli(step: step, args: args + ['--dry-run'], files: files,
                          result: true, credentials: credentials, options: cfg)
    if (plan.image != image) {
        error("${step}: ${where} would run ${plan.image ?: 'no pushed image'}, not the tested ${image}; " +
              'build the image once (buildImage) and promote that commit')
    }
    if (planOnly) {
        return plan
    }
    Map result = pystepsCli(step: step, args: args, files: files,
                            result: true, credentials: credentials, options: cfg)
    if (result.image != image) {
        error("${step}: ${where} got ${result.image}, not the tested ${image}")
    }
    return result
}
