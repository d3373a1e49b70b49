package pysteps

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertFalse
import static org.junit.Assert.assertNotEquals
import static org.junit.Assert.assertTrue
import static org.junit.Assert.fail

import groovy.json.JsonSlurper
import org.junit.Before
import org.junit.Test

class StepsTest extends PipelineHarness {

    static final String RUN_CLI = '"$PYSTEPS_PYTHON" "$PYSTEPS_WORKDIR/run-cli.py" "$PYSTEPS_WORKDIR/args.json"'
    static final String DIGEST = 'registry.example.com/team-a/shop@sha256:' + 'a' * 64
    static final String COMMIT = 'c' * 40

    FakePysteps cli = new FakePysteps()

    @Before
    void wire() {
        credentialStore['pysteps-registry'] = [kind: 'usernamePassword', username: 'robot', password: 'S3cret-registry-pw']
        credentialStore['pysteps-kubeconfig'] = [kind: 'file', content: 'apiVersion: v1\ntoken: S3cret-kube-token\n']
        credentialStore['pysteps-smtp'] = [kind: 'usernamePassword', username: 'mailer', password: 'S3cret-smtp-pw']
        shHandler = { Map c -> cli.handle(c) }
        cli.answer = { List argv, Map env ->
            [rc: 0, result: [ok: true, namespace: 'team-a', name: 'shop', image: DIGEST, commit: COMMIT,
                             urls: ['http://shop.ctest.example.com/']]]
        }
    }

    String workDirOf(Map run) { run.workDir.path }

    @Test
    void deployAppRunsTheExactArgumentListAndHandsTheMapAsJson() {
        Map result = callStep('deployApp', [replicas: 3, env: [JAVA_OPTS: '-Xmx512m']]) as Map

        assertEquals(1, cli.runs.size())
        Map run = cli.runs[0]
        String wd = workDirOf(run)
        assertEquals(['deploy', '--repo', '.', '--file', 'deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--lock-wait', '600', '--result', "${wd}/result.json".toString()], run.argv)
        assertEquals([replicas: 3, env: [JAVA_OPTS: '-Xmx512m']], new JsonSlurper().parseText(run.files['overrides.json']))
        assertEquals(RUN_CLI, run.script)
        assertEquals(DIGEST, result.image)
        assertEquals("deployed team-a/shop: ${DIGEST}".toString(), binding.getVariable('currentBuild').description)
    }

    @Test
    void deployAppOptionsBecomeFlagsNotSpecFields() {
        callStep('deployApp', [dryRun: true, rollback: false, commit: COMMIT, lockWaitSeconds: 5,
                               specFile: 'ops/deploy.yaml', namespace: 'test'])
        Map run = cli.runs[0]
        String wd = workDirOf(run)
        assertEquals(['deploy', '--repo', '.', '--file', 'ops/deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--lock-wait', '5', '--commit', COMMIT, '--dry-run', '--no-rollback',
                      '--result', "${wd}/result.json".toString()], run.argv)
        assertEquals([namespace: 'test'], new JsonSlurper().parseText(run.files['overrides.json']))
    }

    @Test
    void secretsReachTheCliOnlyAsEnvironmentVariables() {
        callStep('deployApp', [smtpCredentialsId: 'pysteps-smtp'])
        Map run = cli.runs[0]
        assertEquals('robot', run.env.PYSTEPS_REGISTRY_USERNAME)
        assertEquals('S3cret-registry-pw', run.env.PYSTEPS_REGISTRY_PASSWORD)
        assertEquals('S3cret-smtp-pw', run.env.PYSTEPS_SMTP_PASSWORD)
        assertTrue(new File(run.env.KUBECONFIG as String).text.contains('S3cret-kube-token'))
        String everything = [run.script, run.argv, run.files, echoed, binding.getVariable('currentBuild').description].toString()
        secrets().each { String s -> assertFalse("secret ${s.take(3)}... leaked", everything.contains(s)) }
        // The secrets are gone once the step is over.
        assertFalse(env().containsKey('PYSTEPS_REGISTRY_PASSWORD'))
    }

    Map env() { binding.getVariable('env') as Map }

    @Test
    void aMissingCredentialFailsBeforePystepsRuns() {
        credentialStore.remove('pysteps-kubeconfig')
        try {
            callStep('deployApp', [:])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains("'pysteps-kubeconfig'"))
        }
        assertEquals(0, cli.runs.size())
    }

    @Test
    void everyCallGetsItsOwnEmptyWorkDirectoryAndNeverReadsAnEarlierResult() {
        callStep('deployApp', [:])
        // The second run fails before writing a result: the first call's result must not be taken.
        cli.answer = { List argv, Map env -> [rc: 4, stderr: 'Observing\npysteps deploy: cluster unreachable at https://127.0.0.1:6443\n'] }
        try {
            callStep('deployApp', [:])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('deployApp: pysteps deploy: cluster unreachable at https://127.0.0.1:6443 (exit 4)', e.message)
        }
        assertNotEquals(cli.runs[0].workDir, cli.runs[1].workDir)
        assertEquals(['args.json', 'install-pysteps.sh', 'overrides.json', 'run-cli.py'], (cli.runs[1].files.keySet() as List).sort())
    }

    @Test
    void aCliThatExitsZeroWithoutAResultIsAnError() {
        cli.answer = { List argv, Map env -> [rc: 0, result: null] }
        try {
            callStep('deployApp', [:])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.startsWith('deployApp: pysteps exited 0 but wrote no result'))
        }
    }

    @Test
    void aFailingCliRaisesWithItsOneLineMessageAndExitCode() {
        cli.answer = { List argv, Map env ->
            [rc: 2, result: [ok: false, exit_code: 2, error: "spec field 'replicas': Input should be less than or equal to 1000"]]
        }
        try {
            callStep('deployApp', [replicas: 5000])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals("deployApp: spec field 'replicas': Input should be less than or equal to 1000 (exit 2)", e.message)
        }
        assertEquals(null, binding.getVariable('currentBuild').description)
    }

    @Test
    void theStepInstallsTheLibrarysOwnPystepsVersionWhenNoPythonIsGiven() {
        callStep('deployApp', [:])
        assertEquals(1, cli.installs.size())
        Map install = cli.installs[0]
        assertEquals(FakePysteps.VERSION, install.env.PYSTEPS_VERSION)
        File script = new File(install.env.PYSTEPS_WORKDIR as String, 'install-pysteps.sh')
        assertEquals(new File(REPO, 'resources/io/pysteps/install-pysteps.sh').text, script.text)
        assertEquals(cli.installedPython, cli.runs[0].env.PYSTEPS_PYTHON)
    }

    @Test
    void aGivenPythonIsUsedWithoutInstalling() {
        callStep('deployApp', [pystepsPython: '/opt/pysteps/bin/python'])
        assertEquals(0, cli.installs.size())
        assertEquals('/opt/pysteps/bin/python', cli.runs[0].env.PYSTEPS_PYTHON)
    }

    @Test
    void aCliOfAnotherVersionIsRefusedWithWhatToDo() {
        cli.reportedVersion = 'pysteps 0.0.1'
        try {
            callStep('deployApp', [pystepsPython: '/opt/pysteps/bin/python'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains("runs 'pysteps 0.0.1', but this library needs pysteps ${FakePysteps.VERSION}"))
            assertTrue(e.message, e.message.contains("pip install pysteps==${FakePysteps.VERSION}"))
        }
        assertEquals(0, cli.runs.size())
    }

    @Test
    void buildImageBuildsWithoutDeploying() {
        cli.answer = { List argv, Map env -> [rc: 0, result: [ok: true, image: DIGEST, commit: COMMIT, built: true]] }
        Map result = callStep('buildImage', [commit: COMMIT]) as Map
        String wd = workDirOf(cli.runs[0])
        assertEquals(['build', '--repo', '.', '--file', 'deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--commit', COMMIT, '--result', "${wd}/result.json".toString()], cli.runs[0].argv)
        assertEquals(DIGEST, result.image)
        assertEquals("built ${DIGEST}".toString(), binding.getVariable('currentBuild').description)
    }

    @Test
    void promoteAppPlansFirstThenDeploysTheTestedDigest() {
        callStep('promoteApp', [from: [image: DIGEST, commit: COMMIT], namespace: 'production', replicas: 4])
        assertEquals(2, cli.runs.size())
        assertTrue(cli.runs[0].argv.contains('--dry-run'))
        assertFalse(cli.runs[1].argv.contains('--dry-run'))
        String wd = workDirOf(cli.runs[1])
        assertEquals(['deploy', '--repo', '.', '--file', 'deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--commit', COMMIT, '--lock-wait', '600', '--result', "${wd}/result.json".toString()], cli.runs[1].argv)
        assertEquals([replicas: 4, namespace: 'production'], new JsonSlurper().parseText(cli.runs[1].files['overrides.json']))
    }

    @Test
    void promoteAppRefusesWhenTheRegistryWouldGiveAnotherImage() {
        cli.answer = { List argv, Map env -> [rc: 0, result: [ok: true, image: null, commit: COMMIT]] }
        try {
            callStep('promoteApp', [image: DIGEST, commit: COMMIT, namespace: 'production'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains('would run no pushed image, not the tested'))
        }
        assertEquals(1, cli.runs.size())  // the plan only: nothing deployed
    }

    @Test
    void promoteAppNeedsADigest() {
        try {
            callStep('promoteApp', [image: 'registry.example.com/team-a/shop:latest', commit: COMMIT, namespace: 'production'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains('repository@sha256'))
        }
        assertEquals(0, cli.runs.size())
    }

    @Test
    void rollbackAppArgumentsAndErrorFromStderr() {
        callStep('rollbackApp', [name: 'shop', namespace: 'team-a', toRevision: 3])
        assertEquals(['rollback', 'shop', '--namespace', 'team-a', '--timeout', '300', '--to-revision', '3'], cli.runs[0].argv)
        cli.answer = { List argv, Map env -> [rc: 3, stderr: 'pysteps rollback: team-a/shop has no earlier revision\n'] }
        try {
            callStep('rollbackApp', [name: 'shop', namespace: 'team-a'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('rollbackApp: pysteps rollback: team-a/shop has no earlier revision (exit 3)', e.message)
        }
    }

    @Test
    void rollbackAppRefusesUnknownOptions() {
        try {
            callStep('rollbackApp', [name: 'shop', namspace: 'team-a'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains('unknown option(s) namspace'))
        }
    }

    @Test
    void smokeTestPollsWithValuesInTheEnvironmentUntilTheAppAnswers() {
        int calls = 0
        shHandler = { Map c ->
            calls++
            new File(c.env.SMOKE_BODY as String).text = calls < 3 ? 'starting' : 'hello from shop'
            [0, calls < 3 ? '502' : '200']
        }
        Map r = callStep('smokeTest', [url: 'http://127.0.0.1:28080/health', host: 'shop.ctest.example.com',
                                       expectText: 'hello']) as Map
        assertEquals(3, r.attempts)
        Map first = shCalls[0]
        assertEquals('http://127.0.0.1:28080/health', first.env.SMOKE_URL)
        assertEquals('shop.ctest.example.com', first.env.SMOKE_HOST)
        assertFalse(first.script.contains('127.0.0.1'))
        assertFalse(first.script.contains('shop.ctest'))
    }

    @Test
    void smokeTestGivesUpAfterItsBoundWithTheLastAnswer() {
        shHandler = { Map c -> [0, '503'] }
        try {
            callStep('smokeTest', [url: 'http://127.0.0.1:28080/', timeoutSeconds: 20, intervalSeconds: 5])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('smokeTest: http://127.0.0.1:28080/ did not answer 200 within 20 s (5 attempts; last: status 503)', e.message)
        }
        assertEquals(5, shCalls.size())
    }

    @Test
    void smokeTestRefusesAUrlThatIsNotOne() {
        try {
            callStep('smokeTest', [url: 'http://x/$(rm -rf /)'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.contains('is not an http(s) URL'))
        }
        assertEquals(0, shCalls.size())
    }

    // Canary steps ---------------------------------------------------------------------------

    @Test
    void canaryAppDeploysTheCommitAsTheCanaryWithItsWeightAndTheMapAsSpecFields() {
        cli.answer = { List argv, Map env ->
            [rc: 0, result: [ok: true, namespace: 'production', name: 'shop-canary', image: null, commit: COMMIT,
                             urls: ['http://shop.ctest.example.com/']]]
        }
        Map result = callStep('canaryApp', [weight: 10, commit: COMMIT, namespace: 'production',
                                            env: [FEATURE_X: 'on']]) as Map
        assertEquals(1, cli.runs.size())
        Map run = cli.runs[0]
        String wd = workDirOf(run)
        assertEquals(['deploy', '--repo', '.', '--file', 'deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--lock-wait', '600', '--canary', '10', '--commit', COMMIT,
                      '--result', "${wd}/result.json".toString()], run.argv)
        assertEquals([namespace: 'production', env: [FEATURE_X: 'on']], new JsonSlurper().parseText(run.files['overrides.json']))
        assertEquals(RUN_CLI, run.script)
        assertEquals('shop-canary', result.name)
        assertEquals("started canary production/shop-canary at 10 %: commit ${COMMIT}".toString(),
                     binding.getVariable('currentBuild').description)
    }

    @Test
    void canaryAppOptionsBecomeFlagsLikeDeployApps() {
        callStep('canaryApp', [weight: 5, dryRun: true, rollback: false, lockWaitSeconds: 30, specFile: 'ops/deploy.yaml'])
        String wd = workDirOf(cli.runs[0])
        assertEquals(['deploy', '--repo', '.', '--file', 'ops/deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                      '--lock-wait', '30', '--canary', '5', '--no-rollback', '--dry-run',
                      '--result', "${wd}/result.json".toString()], cli.runs[0].argv)
        assertEquals([:], new JsonSlurper().parseText(cli.runs[0].files['overrides.json']))
        assertTrue(binding.getVariable('currentBuild').description.startsWith('planned canary team-a/shop'))
    }

    @Test
    void canaryAppWithTheTestedImagePlansFirstThenRunsExactlyThatDigest() {
        callStep('canaryApp', [from: [image: DIGEST, commit: COMMIT], namespace: 'production', weight: 10])
        assertEquals(2, cli.runs.size())
        String wd = workDirOf(cli.runs[1])
        List<String> deploy = ['deploy', '--repo', '.', '--file', 'deploy.yaml', '--overrides', "${wd}/overrides.json".toString(),
                               '--lock-wait', '600', '--canary', '10', '--commit', COMMIT]
        assertEquals(deploy + ['--result', "${wd}/result.json".toString()], cli.runs[1].argv)
        String planWd = workDirOf(cli.runs[0])
        assertEquals(['--dry-run', '--result', "${planWd}/result.json".toString()], cli.runs[0].argv.drop(deploy.size()))
        assertEquals([namespace: 'production'], new JsonSlurper().parseText(cli.runs[1].files['overrides.json']))
    }

    @Test
    void canaryAppRefusesBeforeDeployingWhenTheRegistryWouldGiveAnotherImage() {
        cli.answer = { List argv, Map env -> [rc: 0, result: [ok: true, image: DIGEST.replace('a' * 64, 'e' * 64), commit: COMMIT]] }
        try {
            callStep('canaryApp', [from: [image: DIGEST, commit: COMMIT], namespace: 'production', weight: 10])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.startsWith('canaryApp: the canary would run registry.example.com/team-a/shop@sha256:eee'))
            assertTrue(e.message, e.message.contains("not the tested ${DIGEST}"))
        }
        assertEquals(1, cli.runs.size())
        assertTrue(cli.runs[0].argv.contains('--dry-run'))
    }

    @Test
    void canaryAppNeedsAWeightAndATestedImageThatIsADigest() {
        ['weight is required': [namespace: 'production'],
         'repository@sha256': [weight: 10, image: 'registry.example.com/team-a/shop:latest', commit: COMMIT],
         'commit is required': [weight: 10, image: DIGEST]].each { String expected, Map args ->
            try {
                callStep('canaryApp', args)
                fail("expected canaryApp(${args}) to fail")
            } catch (PipelineError e) {
                assertTrue(e.message, e.message.startsWith('canaryApp: ') && e.message.contains(expected))
            }
        }
        assertEquals(0, cli.runs.size())
    }

    @Test
    void canaryAppFailsWithTheClisMessage() {
        cli.answer = { List argv, Map env ->
            [rc: 3, result: [ok: false, exit_code: 3, error: 'production/shop has no route: deploy it (with domains) before a canary']]
        }
        try {
            callStep('canaryApp', [weight: 10])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('canaryApp: production/shop has no route: deploy it (with domains) before a canary (exit 3)', e.message)
        }
        assertEquals(null, binding.getVariable('currentBuild').description)
    }

    @Test
    void promoteCanaryRunsCanaryPromoteWithTheNamespaceInTheSpec() {
        cli.answer = { List argv, Map env ->
            [rc: 0, result: [ok: true, namespace: 'production', name: 'shop', image: DIGEST, commit: COMMIT]]
        }
        Map result = callStep('promoteCanary', [name: 'shop', namespace: 'production', from: [image: DIGEST, commit: COMMIT],
                                                replicas: 4]) as Map
        assertEquals(1, cli.runs.size())
        Map run = cli.runs[0]
        String wd = workDirOf(run)
        assertEquals(['canary', 'promote', '--namespace', 'production', '--repo', '.', '--file', 'deploy.yaml',
                      '--overrides', "${wd}/overrides.json".toString(), '--lock-wait', '600', '--', 'shop',
                      '--result', "${wd}/result.json".toString()], run.argv)
        assertEquals([replicas: 4, namespace: 'production'], new JsonSlurper().parseText(run.files['overrides.json']))
        assertEquals(DIGEST, result.image)
        assertEquals("promoted the canary of production/shop: ${DIGEST}".toString(), binding.getVariable('currentBuild').description)
    }

    @Test
    void promoteCanaryFailsWhenTheAppDidNotEndUpOnTheTestedDigest() {
        cli.answer = { List argv, Map env ->
            [rc: 0, result: [ok: true, namespace: 'production', name: 'shop', image: DIGEST.replace('a' * 64, 'f' * 64)]]
        }
        try {
            callStep('promoteCanary', [name: 'shop', namespace: 'production', image: DIGEST])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertTrue(e.message, e.message.startsWith('promoteCanary: production/shop got registry.example.com/team-a/shop@sha256:fff'))
        }
    }

    @Test
    void promoteCanaryNeedsTheAppsNameAndReportsNoCanary() {
        try {
            callStep('promoteCanary', [namespace: 'production'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('promoteCanary: name is required (the app whose canary to promote)', e.message)
        }
        assertEquals(0, cli.runs.size())
        cli.answer = { List argv, Map env -> [rc: 3, result: [ok: false, error: 'production/shop has no canary running']] }
        try {
            callStep('promoteCanary', [name: 'shop', namespace: 'production'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('promoteCanary: production/shop has no canary running (exit 3)', e.message)
        }
    }

    @Test
    void abortCanaryRunsCanaryAbortWithTheNameAsAnOperand() {
        Map r = callStep('abortCanary', [name: 'shop', namespace: 'production']) as Map
        assertEquals([['canary', 'abort', '--namespace', 'production', '--', 'shop']], cli.runs*.argv)
        assertEquals(RUN_CLI, cli.runs[0].script)
        assertTrue(new File(cli.runs[0].env.KUBECONFIG as String).text.contains('S3cret-kube-token'))
        assertEquals(true, r.aborted)
        assertEquals('aborted the canary of production/shop', binding.getVariable('currentBuild').description)
    }

    @Test
    void abortCanaryWithoutIfRunningFailsWhenThereIsNoCanary() {
        cli.answer = { List argv, Map env -> [rc: 3, stderr: 'pysteps canary: production/shop has no canary running\n'] }
        try {
            callStep('abortCanary', [name: 'shop', namespace: 'production'])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('abortCanary: pysteps canary: production/shop has no canary running (exit 3)', e.message)
        }
    }

    @Test
    void abortCanaryIfRunningDoesNothingWhenStatusSaysNoCanary() {
        cli.answer = { List argv, Map env ->
            argv[1] == 'status' ? [rc: 3, stderr: 'pysteps canary: production/shop has no canary running\n'] : [rc: 0]
        }
        Map r = callStep('abortCanary', [name: 'shop', namespace: 'production', ifRunning: true]) as Map
        assertEquals([['canary', 'status', '--namespace', 'production', '--', 'shop']], cli.runs*.argv)
        assertEquals(false, r.aborted)
        assertTrue(echoed.toString(), echoed.any { it.contains('has no canary running: nothing to abort') })
        assertEquals(null, binding.getVariable('currentBuild').description)
    }

    @Test
    void abortCanaryIfRunningAbortsARunningCanaryAndStillFailsOnOtherErrors() {
        callStep('abortCanary', [name: 'shop', namespace: 'production', ifRunning: true])
        assertEquals([['canary', 'status', '--namespace', 'production', '--', 'shop'],
                      ['canary', 'abort', '--namespace', 'production', '--', 'shop']], cli.runs*.argv)
        // An unreachable cluster is not "no canary": the step fails.
        cli.answer = { List argv, Map env -> [rc: 4, stderr: 'pysteps canary: cluster unreachable at https://127.0.0.1:6443\n'] }
        try {
            callStep('abortCanary', [name: 'shop', namespace: 'production', ifRunning: true])
            fail('expected the step to fail')
        } catch (PipelineError e) {
            assertEquals('abortCanary: pysteps canary: cluster unreachable at https://127.0.0.1:6443 (exit 4)', e.message)
        }
        assertEquals(3, cli.runs.size())
    }

    @Test
    void abortCanaryAndCanaryWeightRefuseUnknownOptions() {
        ['abortCanary', 'canaryWeight'].each { String step ->
            try {
                callStep(step, [name: 'shop', namspace: 'production', weight: 50])
                fail("expected ${step} to fail")
            } catch (PipelineError e) {
                assertTrue(e.message, e.message.startsWith("${step}: unknown option(s) namspace"))
            }
        }
        assertEquals(0, cli.runs.size())
    }

    @Test
    void canaryWeightRunsCanaryWeight() {
        callStep('canaryWeight', [name: 'shop', namespace: 'production', weight: 50])
        assertEquals([['canary', 'weight', '--namespace', 'production', '--', 'shop', '50']], cli.runs*.argv)
        assertEquals('canary of production/shop at 50 %', binding.getVariable('currentBuild').description)
    }

    @Test
    void canaryStepsPassSecretsOnlyAsEnvironmentVariables() {
        callStep('canaryApp', [from: [image: DIGEST, commit: COMMIT], weight: 10, smtpCredentialsId: 'pysteps-smtp'])
        callStep('promoteCanary', [name: 'shop', namespace: 'team-a'])
        callStep('abortCanary', [name: 'shop', namespace: 'team-a', ifRunning: true])
        assertEquals(5, cli.runs.size())
        cli.runs.each { Map run ->
            assertEquals('S3cret-registry-pw', run.env.PYSTEPS_REGISTRY_PASSWORD)
            assertTrue(new File(run.env.KUBECONFIG as String).text.contains('S3cret-kube-token'))
        }
        assertEquals('S3cret-smtp-pw', cli.runs[0].env.PYSTEPS_SMTP_PASSWORD)
        String everything = [cli.runs*.script, cli.runs*.argv, cli.runs*.files, echoed,
                             binding.getVariable('currentBuild').description].toString()
        secrets().each { String s -> assertFalse("secret ${s.take(3)}... leaked", everything.contains(s)) }
        assertFalse(env().containsKey('KUBECONFIG'))
    }
}
