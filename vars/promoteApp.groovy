// promoteApp: deploy to the next environment exactly the image that passed the previous one.
// It first asks pysteps for a plan (--dry-run) and refuses when the registry's image for the
// commit is not the tested digest, so production never gets a rebuild; then it deploys and
// checks the digest again.

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
    Map from = cfg.from ?: [:]
    String image = cfg.image ?: from.image
    String commit = cfg.commit ?: from.commit
    if (!image || !image.contains('@sha256:')) {
        error("promoteApp: image must be the tested repository@sha256:... (from: buildImage's result); got '${image}'")
    }
    if (!commit) {
        error('promoteApp: commit is required (from: buildImage\'s result)')
    }
    if (!cfg.namespace) {
        error('promoteApp: namespace is required: the environment to promote to')
    }
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) } + [namespace: cfg.namespace]

    List<String> args = ['deploy', '--repo', "${cfg.repo}", '--file', "${cfg.specFile}",
                         '--overrides', '@work/overrides.json', '--commit', "${commit}",
                         '--lock-wait', "${cfg.lockWaitSeconds}"]
    if (!cfg.rollback) { args << '--no-rollback' }
    List credentials = pystepsCli.credentials(cfg)
    Map files = ['overrides.json': overrides]

    Map plan = pystepsCli(step: 'promoteApp', args: args + ['--dry-run'], files: files,
                          result: true, credentials: credentials, options: cfg)
    if (plan.image != image) {
        error("promoteApp: ${cfg.namespace} would run ${plan.image ?: 'no pushed image'}, not the tested ${image}; " +
              'build the image once (buildImage) and promote that commit')
    }
    Map result = pystepsCli(step: 'promoteApp', args: args, files: files,
                            result: true, credentials: credentials, options: cfg)
    if (result.image != image) {
        error("promoteApp: ${cfg.namespace} got ${result.image}, not the tested ${image}")
    }
    pystepsCli.describeBuild("promoted ${image} to ${result.namespace}/${result.name}")
    return result
}
