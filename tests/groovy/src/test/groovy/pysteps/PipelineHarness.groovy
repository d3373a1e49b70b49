package pysteps

import static com.lesfurets.jenkins.unit.global.lib.LibraryConfiguration.library
import static com.lesfurets.jenkins.unit.global.lib.LocalSource.localSource

import com.lesfurets.jenkins.unit.BasePipelineTest
import groovy.json.JsonSlurper
import org.junit.Before
import org.junit.Rule
import org.junit.rules.TemporaryFolder

import java.nio.file.Files

/**
 * The test harness for this library: JenkinsPipelineUnit 1.1 (not Jenkins itself, which cannot
 * be had here) with the mocks 1.1 lacks or gets wrong. The library is loaded as Jenkins loads
 * it, through @Library('pysteps') from a local source that is this repository. File steps work
 * on a real temporary workspace; withEnv/withCredentials really set the environment the `sh`
 * mock sees; `error` throws, as Jenkins' does.
 */
abstract class PipelineHarness extends BasePipelineTest {

    static final File REPO = new File(System.getProperty('repo.root', '../..')).canonicalFile

    @Rule
    public final TemporaryFolder tmp = new TemporaryFolder()

    File workspace
    File workspaceTmp
    /** Credential store: ID -> [kind, values]. */
    Map<String, Map> credentialStore = [:]
    /** Every `sh` call: [script, env snapshot, returnStatus, returnStdout]. */
    List<Map> shCalls = []
    /** What `sh` does; a test sets it. Receives the call map, returns [rc, stdout]. */
    Closure shHandler = { Map c -> [0, ''] }
    List<String> echoed = []
    List<String> errors = []
    Map<String, String> envVars = [:]

    @Before
    @Override
    void setUp() throws Exception {
        File libs = tmp.newFolder('libs')
        Files.createSymbolicLink(new File(libs, 'pysteps@main').toPath(), REPO.toPath())
        workspace = tmp.newFolder('workspace')
        workspaceTmp = tmp.newFolder('workspace@tmp')
        scriptRoots = [REPO.path, new File(REPO, 'tests/groovy/src/test/resources').path] as String[]
        scriptExtension = ''
        super.setUp()
        helper.registerSharedLibrary(library().name('pysteps')
                .defaultVersion('main')
                .allowOverride(false)
                .implicit(false)
                .targetPath(libs.path)
                .retriever(localSource(libs.path))
                .build())
        envVars.putAll([WORKSPACE: workspace.path, WORKSPACE_TMP: workspaceTmp.path,
                        BUILD_NUMBER: '7', BRANCH_NAME: 'main', JOB_NAME: 'team-a/shop',
                        BUILD_URL: 'http://127.0.0.1:8080/job/team-a/job/shop/7/'])
        binding.setVariable('env', envVars)
        binding.setVariable('currentBuild', [result: 'SUCCESS', description: null,
                                              currentResult: 'SUCCESS'])
        registerFileSteps()
        registerEnvironmentSteps()
        helper.registerAllowedMethod('error', [String], { String m -> errors << m; throw new PipelineError(m) })
        helper.registerAllowedMethod('echo', [String], { String m -> echoed << m })
        helper.registerAllowedMethod('sleep', [Map], { Map m -> })
        helper.registerAllowedMethod('sh', [Map], { Map c -> runSh(c) })
        helper.registerAllowedMethod('sh', [String], { String s -> runSh([script: s]) })
    }

    File file(String path) {
        File f = new File(path)
        return f.absolute ? f : new File(workspace, path)
    }

    void registerFileSteps() {
        helper.registerAllowedMethod('writeFile', [Map], { Map m ->
            File f = file(m.file as String)
            f.parentFile.mkdirs()
            f.text = m.text
        })
        helper.registerAllowedMethod('readFile', [String], { String p -> file(p).text })
        helper.registerAllowedMethod('readFile', [Map], { Map m -> file(m.file as String).text })
        helper.registerAllowedMethod('fileExists', [String], { String p -> file(p).exists() })
        helper.registerAllowedMethod('pwd', [Map], { Map m -> m.tmp ? workspaceTmp.path : workspace.path })
        helper.registerAllowedMethod('pwd', [], { -> workspace.path })
        String cwd = null
        helper.registerAllowedMethod('dir', [String, Closure], { String d, Closure body ->
            String old = cwd
            cwd = d
            try { body() } finally { cwd = old }
        })
        helper.registerAllowedMethod('deleteDir', [], { -> if (cwd) { file(cwd).deleteDir() } })
        helper.registerAllowedMethod('readJSON', [Map], { Map m ->
            new JsonSlurper().parseText(m.text ?: file(m.file as String).text)
        })
        helper.registerAllowedMethod('writeJSON', [Map], { Map m ->
            File f = file(m.file as String)
            f.parentFile.mkdirs()
            f.text = groovy.json.JsonOutput.toJson(m.json)
        })
    }

    void registerEnvironmentSteps() {
        helper.registerAllowedMethod('withEnv', [List, Closure], { List pairs, Closure body ->
            withVariables(pairs.collectEntries { String p -> int i = p.indexOf('='); [(p[0..<i]): p.substring(i + 1)] }, body)
        })
        helper.registerAllowedMethod('usernamePassword', [Map], { Map m -> [kind: 'usernamePassword'] + m })
        helper.registerAllowedMethod('file', [Map], { Map m -> [kind: 'file'] + m })
        helper.registerAllowedMethod('string', [Map], { Map m -> [kind: 'string'] + m })
        helper.registerAllowedMethod('withCredentials', [List, Closure], { List bindings, Closure body ->
            Map vars = [:]
            bindings.each { Map b ->
                Map stored = credentialStore[b.credentialsId as String]
                if (stored == null || stored.kind != b.kind) {
                    throw new PipelineError("ERROR: Could not find credentials entry with ID '${b.credentialsId}' of kind ${b.kind}")
                }
                if (b.kind == 'usernamePassword') {
                    vars[b.usernameVariable] = stored.username
                    vars[b.passwordVariable] = stored.password
                } else if (b.kind == 'file') {
                    File f = new File(workspaceTmp, "secretFiles/${b.credentialsId}")
                    f.parentFile.mkdirs()
                    f.text = stored.content
                    vars[b.variable] = f.path
                } else {
                    vars[b.variable] = stored.secret
                }
            }
            withVariables(vars, body)
        })
    }

    Object withVariables(Map vars, Closure body) {
        Map saved = new HashMap(envVars)
        envVars.putAll(vars)
        try {
            return body()
        } finally {
            envVars.clear()
            envVars.putAll(saved)
        }
    }

    Object runSh(Map c) {
        Map call = [script: c.script, env: new HashMap(envVars),
                    returnStatus: c.returnStatus ?: false, returnStdout: c.returnStdout ?: false]
        shCalls << call
        List out = shHandler(call) as List
        int rc = out[0] as int
        if (call.returnStatus) {
            return rc
        }
        if (rc != 0) {
            throw new PipelineError("script returned exit code ${rc}")
        }
        return call.returnStdout ? out[1] : null
    }

    /** Every secret of the credential store (what must never show up anywhere). */
    List<String> secrets() {
        credentialStore.values().collectMany { Map c -> [c.password, c.secret, c.content].findAll() } as List<String>
    }

    /** A script with @Library('pysteps') that calls one step (how a Jenkinsfile calls it). */
    Object callStep(String step, Map args) {
        def script = loadScript('pipelines/callStep.jenkins')
        return script.callStep(step, args)
    }
}

/** What Jenkins' error step raises (hudson.AbortException there). */
class PipelineError extends RuntimeException {
    PipelineError(String message) { super(message) }
}

/** What a refused `input` or an expired `timeout` raises (FlowInterruptedException there). */
class PipelineAborted extends RuntimeException {
    PipelineAborted(String message) { super(message) }
}
