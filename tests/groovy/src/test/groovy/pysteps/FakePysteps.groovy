package pysteps

import groovy.json.JsonOutput
import groovy.json.JsonSlurper

/**
 * Stands in for the pysteps CLI behind the `sh` mock: reads the argument list the step wrote
 * (args.json in the per-call work directory), records it with the environment, and answers
 * as the CLI does (result.json, stderr line, exit code). The real CLI is exercised by
 * RealCliSecurityTest and by the Python tests.
 */
class FakePysteps {
    static final String VERSION = new File(PipelineHarness.REPO, 'resources/io/pysteps/version.txt').text.trim()

    String reportedVersion = "pysteps ${VERSION}"
    String installedPython = '/agent/.cache/pysteps/agent/venv-' + VERSION + '/bin/python'
    /** Called per command run: (argv, env) -> [rc: int, result: Map or null, stderr: String]. */
    Closure answer = { List argv, Map env -> [rc: 0, result: [ok: true]] }
    List<Map> runs = []
    List<Map> installs = []

    List handle(Map call) {
        String script = call.script
        if (script.contains('install-pysteps.sh')) {
            installs << call
            return [0, "install-pysteps: installing\n${installedPython}\n"]
        }
        if (!script.contains('run-cli.py')) {
            throw new AssertionError("unexpected shell script: ${script}")
        }
        File workDir = new File(call.env.PYSTEPS_WORKDIR as String)
        List argv = new JsonSlurper().parse(new File(workDir, 'args.json')) as List
        if (argv == ['--version']) {
            return [0, reportedVersion + '\n']
        }
        runs << [argv: argv, env: call.env, script: script, workDir: workDir,
                 files: workDir.listFiles().collectEntries { [(it.name): it.text] }]
        Map out = answer(argv, call.env) as Map
        int i = argv.indexOf('--result')
        if (i >= 0 && out.result != null) {
            new File(argv[i + 1] as String).text = JsonOutput.toJson(out.result)
        }
        if (out.stderr) {
            new File(workDir, 'stderr.log').text = out.stderr
        }
        return [out.rc ?: 0, '']
    }
}
