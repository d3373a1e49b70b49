package pysteps

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertFalse
import static org.junit.Assert.assertTrue
import static org.junit.Assert.fail

import groovy.json.JsonSlurper
import org.junit.Before
import org.junit.Test

/**
 * Hostile values given to the steps run through a real shell and the REAL pysteps CLI (the
 * clone's .venv): they must reach pysteps only as data, be refused there (exit 2, one line
 * naming the field), run nothing, and no secret may show up in the command, the output or
 * the build description.
 */
class RealCliSecurityTest extends PipelineHarness {

    static final String PYTHON = System.getProperty('pysteps.python')

    File canary
    StringBuilder output = new StringBuilder()

    @Before
    void wire() {
        if (!new File(PYTHON).canExecute()) {
            fail("no pysteps CLI at ${PYTHON}: run make venv (make groovy does)")
        }
        canary = new File(workspace, 'CANARY')
        credentialStore['pysteps-registry'] = [kind: 'usernamePassword', username: 'robot', password: 'S3cret-registry-pw']
        credentialStore['pysteps-kubeconfig'] = [kind: 'file', content: 'token: S3cret-kube-token\n']
        new File(workspace, 'deploy.yaml').text = 'name: shop\nimage: 127.0.0.1:25000/team-a/shop\n'
        shHandler = { Map c -> realShell(c) }
    }

    /** `sh` as Jenkins runs it: /bin/sh -c SCRIPT in the workspace with the step's environment. */
    List realShell(Map c) {
        ProcessBuilder pb = new ProcessBuilder('/bin/sh', '-c', c.script as String).directory(workspace)
        Map<String, String> env = pb.environment()
        env.clear()
        env.PATH = '/usr/local/bin:/usr/bin:/bin'
        env.HOME = workspaceTmp.path
        (c.env as Map).each { k, v -> env[k as String] = v as String }
        Process p = pb.start()
        StringBuilder out = new StringBuilder()
        StringBuilder err = new StringBuilder()
        p.waitForProcessOutput(out, err)
        output.append(out).append(err)
        return [p.exitValue(), out.toString()]
    }

    static final List<String> HOSTILE = [
        '$(touch CANARY)',
        '`touch CANARY`',
        "x'; touch CANARY; curl http://127.0.0.1:9/ '",
        'a"; touch CANARY; "',
        'shop\ntouch CANARY',
        'shop; touch CANARY',
    ]

    String refusal(String step, Map args) {
        try {
            callStep(step, args + [pystepsPython: PYTHON])
        } catch (PipelineError e) {
            return e.message
        }
        fail("${step} accepted ${args}")
        return null
    }

    void assertRefusedAsData(String message, String field) {
        assertTrue(message, message.contains(field))
        assertTrue(message, message.endsWith('(exit 2)'))
        assertFalse('a hostile value was run by a shell', canary.exists())
        String seen = [output, shCalls*.script, echoed, binding.getVariable('currentBuild').description].toString()
        secrets().each { String s -> assertFalse("secret ${s.take(3)}... leaked", seen.contains(s)) }
        assertEquals(null, binding.getVariable('currentBuild').description)
    }

    @Test
    void hostileAppNamesAreDataRefusedByPysteps() {
        HOSTILE.each { String value ->
            String message = refusal('deployApp', [name: value])
            assertRefusedAsData(message, "spec field 'name'")
            // The value reached pysteps intact, as one piece of JSON data.
            File overrides = new File(shCalls.findAll { it.env.PYSTEPS_WORKDIR }[-1].env.PYSTEPS_WORKDIR as String, 'overrides.json')
            assertEquals(value, new JsonSlurper().parse(overrides).name)
        }
    }

    @Test
    void hostileMapKeysAndValuesAreRefused() {
        assertRefusedAsData(refusal('deployApp', [env: ['$(touch CANARY)': 'x']]), "spec field 'env'")
        assertRefusedAsData(refusal('deployApp', [domains: ['$(touch CANARY).example.com']]), "spec field 'domains.0'")
        assertRefusedAsData(refusal('deployApp', [namespace: "team-a'; touch CANARY; '"]), "spec field 'namespace'")
    }

    @Test
    void aHostileBranchOrCommitIsRefused() {
        assertRefusedAsData(refusal('deployApp', [commit: 'main; touch CANARY']), '--commit')
        assertRefusedAsData(refusal('deployApp', [specFile: '$(touch CANARY).yaml']), 'no such file')
    }

    @Test
    void hostileNamesForRollbackAreRefusedBeforeAnyRequest() {
        HOSTILE.each { String value ->
            assertRefusedAsData(refusal('rollbackApp', [name: value]), 'not a DNS-1123 label')
        }
    }

    @Test
    void hostileNamesForTheCanaryStepsAreRefusedBeforeAnyRequest() {
        // '--help' and '-n' too: after `--` a name is an operand, never an option.
        (HOSTILE + ['--help', '-n']).each { String value ->
            assertRefusedAsData(refusal('abortCanary', [name: value, namespace: 'production']), 'not a DNS-1123 label')
            assertRefusedAsData(refusal('abortCanary', [name: value, ifRunning: true]), 'not a DNS-1123 label')
            assertRefusedAsData(refusal('promoteCanary', [name: value]), 'not a DNS-1123 label')
            assertRefusedAsData(refusal('canaryWeight', [name: value, weight: 50]), 'not a DNS-1123 label')
            assertRefusedAsData(refusal('canaryApp', [name: value, weight: 10]), "spec field 'name'")
        }
        assertRefusedAsData(refusal('abortCanary', [name: 'shop', namespace: '$(touch CANARY)']), 'not a DNS-1123 label')
    }

    @Test
    void hostileWeightsAreRefusedByPysteps() {
        ['$(touch CANARY)', '10; touch CANARY', '10\ntouch CANARY', '--help'].each { String value ->
            assertRefusedAsData(refusal('canaryApp', [weight: value]), 'argument --canary')
        }
        ['$(touch CANARY)', '10; touch CANARY', '0', '100', '-5', '--help'].each { String value ->
            assertRefusedAsData(refusal('canaryWeight', [name: 'shop', weight: value]), 'give a percentage from 1 to 99')
        }
    }
}
