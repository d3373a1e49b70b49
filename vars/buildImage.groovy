// buildImage: build and push the app's image for this commit without deploying it
// (`pysteps build`). The result's image is `repository@sha256:...`: promoteApp ships exactly it.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        specFile: 'deploy.yaml',
        repo    : '.',
        commit  : null,
    ]
    Map cfg = defaults + config
    Map overrides = config.findAll { k, v -> !defaults.containsKey(k) }

    List<String> args = ['build', '--repo', "${cfg.repo}", '--file', "${cfg.specFile}",
                         '--overrides', '@work/overrides.json']
    if (cfg.commit) { args += ['--commit', "${cfg.commit}"] }

    Map result = pystepsCli(step: 'buildImage', args: args, files: ['overrides.json': overrides],
                            result: true, credentials: pystepsCli.credentials(cfg), options: cfg)
    pystepsCli.describeBuild("${result.built ? 'built' : 'reused'} ${result.image}")
    return result
}
