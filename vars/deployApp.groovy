// deployApp: ship the app in this workspace to Kubernetes with the pysteps CLI.
// Thin on purpose: merge defaults once, hand the spec to the CLI as a JSON file, pass
// secrets only through withCredentials environment variables, read the JSON result back.
import groovy.json.JsonOutput
import groovy.json.JsonSlurperClassic

def call(Map config = [:]) {
    Map defaults = [
        specFile               : 'deploy.yaml',   // the app spec in the repository
        dryRun                 : false,
        rollback               : true,
        lockWaitSeconds        : 600,
        registryCredentialsId  : 'pysteps-registry',   // username/password
        kubeconfigCredentialsId: 'pysteps-kubeconfig', // secret file
        pysteps                : 'pysteps',
    ]
    Map cfg = defaults + config
    // Everything that is not a step option is a spec field, merged over deploy.yaml.
    Map overrides = cfg.findAll { k, v -> !defaults.containsKey(k) }

    String dir = "${env.WORKSPACE_TMP ?: pwd(tmp: true)}/pysteps-${env.BUILD_NUMBER ?: 'local'}"
    String overridesFile = "${dir}/overrides.json"
    String resultFile = "${dir}/result.json"
    writeFile file: overridesFile, text: JsonOutput.toJson(overrides)

    List<String> args = [cfg.pysteps, 'deploy', '--repo', '.', '--file', cfg.specFile,
                         '--overrides', overridesFile, '--result', resultFile,
                         '--lock-wait', cfg.lockWaitSeconds.toString()]
    if (cfg.dryRun) { args << '--dry-run' }
    if (!cfg.rollback) { args << '--no-rollback' }
    String command = args.collect { shellQuote(it.toString()) }.join(' ')

    int rc
    withCredentials([
        usernamePassword(credentialsId: cfg.registryCredentialsId,
                         usernameVariable: 'PYSTEPS_REGISTRY_USERNAME',
                         passwordVariable: 'PYSTEPS_REGISTRY_PASSWORD'),
        file(credentialsId: cfg.kubeconfigCredentialsId, variable: 'KUBECONFIG'),
    ]) {
        rc = sh(script: command, returnStatus: true)
    }
    Map result = fileExists(resultFile) ?
        new JsonSlurperClassic().parseText(readFile(resultFile)) as Map : [ok: false]
    if (rc != 0) {
        error("deployApp: ${result.error ?: 'pysteps failed'} (exit ${rc})")
    }
    return result
}

// Single-quote for sh: the only way values reach the shell, so nothing is interpreted.
static String shellQuote(String value) {
    return "'" + value.replace("'", "'\"'\"'") + "'"
}
