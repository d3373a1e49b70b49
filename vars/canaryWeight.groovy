// canaryWeight: give the app's running canary another share of its requests
// (`pysteps canary weight`), e.g. 10 -> 50 before promoteCanary.

Map call(Map config = [:]) {
    Map defaults = pystepsCli.commonDefaults() + [
        name     : null,
        namespace: 'default',
        weight   : null,     // percent, 1-99 (pysteps checks it)
    ]
    Map cfg = defaults + config
    List unknown = (config.keySet() - defaults.keySet()) as List
    if (unknown) {
        error("canaryWeight: unknown option(s) ${unknown.join(', ')}; see canaryWeight's help")
    }
    if (!cfg.name || cfg.weight == null) {
        error('canaryWeight: name and weight are required (the app, and the percent of its requests for the canary)')
    }
    pystepsCli(step: 'canaryWeight', args: ['canary', 'weight', '--namespace', "${cfg.namespace}", '--',
                                            "${cfg.name}", "${cfg.weight}"],
               credentials: pystepsCli.credentials(cfg), options: cfg)
    pystepsCli.describeBuild("canary of ${cfg.namespace}/${cfg.name} at ${cfg.weight} %")
    return [ok: true, name: cfg.name, namespace: cfg.namespace, weight: cfg.weight]
}
