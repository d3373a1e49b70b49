// pystepsCli: run one pysteps command for a step of this library. Every other step calls it.
//
// The contract (Piper's, with a Python CLI): the step writes what pysteps needs as JSON files
// into a fresh per-call work directory, runs constant shell text that hands the argument LIST
// to pysteps as data (resources/io/pysteps/run-cli.py), passes secrets only through
// withCredentials environment variables, reads the result JSON back from that directory (a
// result left by an earlier call can never be read: the directory is new and emptied first),
// and raises error() with the CLI's own one-line message when it fails.
import groovy.json.JsonOutput
import groovy.json.JsonSlurperClassic

// The only shell text this library runs for pysteps: constants, values come from the environment.
@groovy.transform.Field
static final String RUN_CLI = '"$PYSTEPS_PYTHON" "$PYSTEPS_WORKDIR/run-cli.py" "$PYSTEPS_WORKDIR/args.json"'
@groovy.transform.Field
static final String INSTALL = 'sh "$PYSTEPS_WORKDIR/install-pysteps.sh"'

/**
 * Run `pysteps ARGS...` and return the parsed result map.
 *   step        the calling step's name, for messages ('deployApp')
 *   args        the CLI arguments (a list of strings; never parsed by a shell)
 *   files       name -> data, written as JSON into the work directory; an argument
 *               '@work/NAME' is replaced by that file's path
 *   result      true: add `--result <workdir>/result.json` and read it back
 *   credentials withCredentials bindings (secrets reach pysteps as environment variables)
 *   options     the step's merged options (pystepsPython, pystepsHome, pystepsPipSpec)
 *   acceptExit  exit codes that are an answer, not a failure: returned as [exit: N, error: line]
 */
Map call(Map call) {
    String step = call.step ?: 'pysteps'
    Map options = call.options ?: [:]
    String workDir = newWorkDir(step)
    String python = pystepsPython(step, options, workDir)

    List<String> args = (call.args ?: []).collect { String a ->
        a.startsWith('@work/') ? "${workDir}/${a.substring(6)}".toString() : a.toString()
    }
    (call.files ?: [:]).each { String name, Object data ->
        writeFile file: "${workDir}/${name}", text: JsonOutput.toJson(data)
    }
    String resultFile = "${workDir}/result.json"
    if (call.result) {
        args += ['--result', resultFile]
    }
    writeFile file: "${workDir}/args.json", text: JsonOutput.toJson(args)
    echo "${step}: pysteps ${args.join(' ')}"

    int rc = 0
    withEnv(["PYSTEPS_PYTHON=${python}", "PYSTEPS_WORKDIR=${workDir}"]) {
        withCredentials(call.credentials ?: []) {
            rc = sh(script: RUN_CLI, returnStatus: true) as int
        }
    }
    Map result = [:]
    if (call.result && fileExists(resultFile)) {
        result = new JsonSlurperClassic().parseText(readFile(resultFile)) as Map
    }
    if (rc != 0 && rc in (call.acceptExit ?: [])) {
        return [exit: rc, error: result.error ?: lastCliError(workDir)]
    }
    if (rc != 0) {
        error("${step}: ${result.error ?: lastCliError(workDir) ?: 'pysteps failed'} (exit ${rc})")
    }
    if (call.result && !result) {
        error("${step}: pysteps exited 0 but wrote no result to ${resultFile}; check the log above")
    }
    return result
}

/** A fresh, empty directory for one call: results of earlier calls cannot be mistaken for ours. */
String newWorkDir(String step) {
    String tmp = env.WORKSPACE_TMP ?: pwd(tmp: true)
    String workDir = "${tmp}/pysteps/${step}-${UUID.randomUUID()}"
    dir(workDir) { deleteDir() }
    writeFile file: "${workDir}/run-cli.py", text: libraryResource('io/pysteps/run-cli.py')
    return workDir
}

/**
 * The python of a virtualenv holding exactly this library's pysteps version: given by
 * `pystepsPython` (a container image with pysteps), or installed once per version on the agent.
 */
String pystepsPython(String step, Map options, String workDir) {
    String wanted = libraryResource('io/pysteps/version.txt').trim()
    String python = options.pystepsPython
    if (!python) {
        writeFile file: "${workDir}/install-pysteps.sh", text: libraryResource('io/pysteps/install-pysteps.sh')
        List<String> installEnv = ["PYSTEPS_VERSION=${wanted}", "PYSTEPS_WORKDIR=${workDir}"]
        if (options.pystepsHome) { installEnv << "PYSTEPS_HOME=${options.pystepsHome}" }
        if (options.pystepsPipSpec) { installEnv << "PYSTEPS_PIP_SPEC=${options.pystepsPipSpec}" }
        withEnv(installEnv) {
            python = sh(script: INSTALL, returnStdout: true).trim().readLines().last()
        }
    }
    writeFile file: "${workDir}/args.json", text: JsonOutput.toJson(['--version'])
    String found
    withEnv(["PYSTEPS_PYTHON=${python}", "PYSTEPS_WORKDIR=${workDir}"]) {
        found = sh(script: RUN_CLI, returnStdout: true).trim()
    }
    if (found != "pysteps ${wanted}") {
        error("${step}: ${python} runs '${found}', but this library needs pysteps ${wanted}. " +
              "Point pystepsPython at a pysteps ${wanted} (pip install pysteps==${wanted}), or " +
              'leave it unset so the step installs that version on the agent; a stale cached ' +
              'virtualenv is fixed by deleting it ($HOME/.cache/pysteps/agent/venv-VERSION).')
    }
    return python
}

/** The CLI's own one-line message ("pysteps CMD: ...") from its standard error, if any. */
String lastCliError(String workDir) {
    String log = "${workDir}/stderr.log"
    if (!fileExists(log)) {
        return null
    }
    String line = readFile(log).readLines().reverse().find { String l -> l.startsWith('pysteps ') }
    return line
}

/**
 * The withCredentials bindings every pysteps command may need, from the step's credential IDs:
 * the registry login (username/password), the kubeconfig (secret file) and, when given, the
 * SMTP login (username/password). Secrets become environment variables, never arguments.
 */
List credentials(Map cfg) {
    List bindings = []
    if (cfg.registryCredentialsId) {
        bindings << usernamePassword(credentialsId: cfg.registryCredentialsId,
                                     usernameVariable: 'PYSTEPS_REGISTRY_USERNAME',
                                     passwordVariable: 'PYSTEPS_REGISTRY_PASSWORD')
    }
    if (cfg.kubeconfigCredentialsId) {
        bindings << file(credentialsId: cfg.kubeconfigCredentialsId, variable: 'KUBECONFIG')
    }
    if (cfg.smtpCredentialsId) {
        bindings << usernamePassword(credentialsId: cfg.smtpCredentialsId,
                                     usernameVariable: 'PYSTEPS_SMTP_USERNAME',
                                     passwordVariable: 'PYSTEPS_SMTP_PASSWORD')
    }
    return bindings
}

/** The options every step shares (credential IDs and where pysteps comes from). */
Map commonDefaults() {
    return [
        registryCredentialsId  : 'pysteps-registry',    // username/password
        kubeconfigCredentialsId: 'pysteps-kubeconfig',  // secret file
        smtpCredentialsId      : null,                  // username/password, optional
        pystepsPython          : null,
        pystepsHome            : null,
        pystepsPipSpec         : null,
    ]
}

/** One line per step in the build description, so the build page says what shipped where. */
void describeBuild(String line) {
    String old = currentBuild.description
    currentBuild.description = old ? "${old}\n${line}" : line
}
