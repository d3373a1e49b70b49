package pysteps

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertFalse
import static org.junit.Assert.assertTrue

import groovy.json.JsonSlurper
import org.junit.Before
import org.junit.Test

/** Jenkinsfile.example through the declarative interpreter (not Jenkins' own; see its doc). */
class JenkinsfileTest extends PipelineHarness {

    static final String DIGEST = 'registry.example.com/team-a/shop@sha256:' + 'b' * 64
    static final String COMMIT = 'd' * 40
    static final List<String> ALL_STAGES = ['Checkout', 'Maven build', 'SonarQube', 'Unit tests', 'Build image',
                                            'Publish to Nexus', 'Deploy to test', 'Smoke tests', 'Regression',
                                            'Tag release', 'Pre-release', 'Canary', 'Production']
    static final List<String> PRODUCTION_STAGES = ['Tag release', 'Pre-release', 'Canary', 'Production']

    FakePysteps cli = new FakePysteps()
    DeclarativeInterpreter pipeline
    List<Map> mails = []
    List<Map> inputs = []
    List<String> shellScripts = []
    /** Stashes survive between builds here, as with preserveStashes(). */
    File stashes
    String smokeStatus = '200'
    /** Smoke tests of URLs containing this fail (502). */
    String smokeFailsFor = null
    /** What the registry would give the canary for the commit (default: the digest built once). */
    String canaryImage = DIGEST
    boolean canaryRunning = false
    boolean refuseInput = false

    @Before
    void wire() {
        stashes = tmp.newFolder('stashes')
        credentialStore['pysteps-registry'] = [kind: 'usernamePassword', username: 'robot', password: 'S3cret-registry-pw']
        credentialStore['pysteps-kubeconfig'] = [kind: 'file', content: 'token: S3cret-kube-token\n']
        credentialStore['nexus-deploy'] = [kind: 'usernamePassword', username: 'ci', password: 'S3cret-nexus-pw']
        credentialStore['gitlab-push'] = [kind: 'usernamePassword', username: 'ci', password: 'S3cret-gitlab-pw']
        pipeline = new DeclarativeInterpreter(this)
        helper.registerAllowedMethod('readYaml', [Map], { Map m -> new org.yaml.snakeyaml.Yaml().load(file(m.file as String).text) })
        new File(workspace, 'deploy.yaml').text = 'name: shop\nimage: registry.example.com/team-a/shop\nmail:\n  to: [team-a@example.com, ops@example.com]\n'
        binding.setVariable('scm', [type: 'GitSCM'])
        cli.answer = { List argv, Map env ->
            if (argv[0] == 'build') {
                return [rc: 0, result: [ok: true, image: DIGEST, commit: COMMIT, built: true]]
            }
            if (argv[0] == 'canary') {
                return canaryAnswer(argv)
            }
            Map overrides = new JsonSlurper().parse(new File(argv[argv.indexOf('--overrides') + 1] as String)) as Map
            String ns = overrides.namespace
            // What the registry holds for the commit: the digest built once.
            String image = argv[argv.indexOf('--commit') + 1] == COMMIT ? DIGEST : null
            boolean canary = argv.contains('--canary')
            if (canary && !argv.contains('--dry-run')) {
                canaryRunning = true
            }
            return [rc: 0, result: [ok: true, namespace: ns, name: canary ? 'shop-canary' : 'shop',
                                    image: canary ? canaryImage : image, commit: COMMIT,
                                    urls: ["http://shop-${ns}.ctest.example.com/".toString()]]]
        }
        shHandler = { Map c ->
            if (c.script.contains('run-cli.py') || c.script.contains('install-pysteps.sh')) {
                return cli.handle(c)
            }
            shellScripts << c.script
            if (c.script.startsWith('curl')) {
                new File(c.env.SMOKE_BODY as String).text = 'ok'
                return [0, smokeFailsFor && c.env.SMOKE_URL.contains(smokeFailsFor) ? '502' : smokeStatus]
            }
            return [0, '']
        }
        helper.registerAllowedMethod('script', [Closure], { Closure body -> body() })
        helper.registerAllowedMethod('checkout', [Map], { Map m -> })
        Map timeout = null
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map m, Closure body ->
            timeout = m
            try { body() } finally { timeout = null }
        })
        helper.registerAllowedMethod('input', [Map], { Map m ->
            inputs << m + [timeoutHours: timeout?.unit == 'HOURS' ? timeout.time : null,
                           smokedBefore: shCalls.count { it.script.startsWith('curl') }]
            if (refuseInput) {
                throw new PipelineAborted('Rejected by ops')
            }
        })
        helper.registerAllowedMethod('mail', [Map], { Map m -> mails << m })
        helper.registerAllowedMethod('junit', [Map], { Map m -> })
        helper.registerAllowedMethod('withSonarQubeEnv', [String, Closure], { String s, Closure body -> body() })
        helper.registerAllowedMethod('waitForQualityGate', [Map], { Map m -> [status: 'OK'] })
        helper.registerAllowedMethod('stash', [Map], { Map m ->
            File dest = new File(stashes, m.name as String)
            dest.deleteDir()
            dest.mkdirs()
            workspace.eachFileRecurse { File f ->
                String rel = workspace.toPath().relativize(f.toPath()).toString()
                if (f.isFile() && rel ==~ (m.includes as String).replace('.', '\\.').replace('*', '[^/]*')) {
                    new File(dest, rel).with { parentFile.mkdirs(); bytes = f.bytes }
                }
            }
        })
        helper.registerAllowedMethod('unstash', [String], { String name ->
            File src = new File(stashes, name)
            if (!src.directory) {
                throw new PipelineError("No such saved stash ‘${name}’")
            }
            src.eachFileRecurse { File f ->
                if (f.isFile()) {
                    new File(workspace, src.toPath().relativize(f.toPath()).toString()).with { parentFile.mkdirs(); bytes = f.bytes }
                }
            }
        })
        new File(workspace, 'target').mkdirs()
        new File(workspace, 'target/shop.jar').text = 'jar'
    }

    /** `pysteps canary ...` as the CLI answers it, for the app's canary in production. */
    Map canaryAnswer(List argv) {
        assertEquals(['--namespace', 'production', '--', 'shop'], argv[2..-1].take(2) + argv.drop(argv.indexOf('--')).take(2))
        String action = argv[1]
        if (!canaryRunning && action in ['status', 'abort', 'promote']) {
            return [rc: 3, stderr: 'pysteps canary: production/shop has no canary running\n']
        }
        if (action == 'abort' || action == 'promote') {
            canaryRunning = false
        }
        return [rc: 0, result: [ok: true, namespace: 'production', name: 'shop', image: DIGEST, commit: COMMIT,
                                urls: ['http://shop-production.ctest.example.com/']]]
    }

    /** The pysteps commands the flow ran (plans left out), in order: 'deploy test', 'canary abort', ... */
    List<String> commands() {
        cli.runs.findAll { !it.argv.contains('--dry-run') }.collect { Map run ->
            List argv = run.argv
            if (argv[0] == 'canary') {
                return "canary ${argv[1]}".toString()
            }
            if (argv[0] == 'deploy') {
                String ns = (new JsonSlurper().parseText(run.files['overrides.json']) as Map).namespace
                return "deploy ${argv.contains('--canary') ? "--canary ${argv[argv.indexOf('--canary') + 1]} " : ''}${ns}".toString()
            }
            return argv[0] as String
        }
    }

    void runJenkinsfile() {
        runScript('Jenkinsfile.example')
    }

    List<String> promotedNamespaces() {
        cli.runs.findAll { it.argv[0] == 'deploy' && !it.argv.contains('--dry-run') }.collect {
            (new JsonSlurper().parseText(it.files['overrides.json']) as Map).namespace
        }
    }

    @Test
    void onMainEveryStageRunsInOrderAndOneDigestGoesEverywhere() {
        runJenkinsfile()
        assertEquals(ALL_STAGES, pipeline.ran())
        assertTrue(pipeline.stages.every { it.status == 'SUCCESS' })
        assertEquals('SUCCESS', binding.getVariable('currentBuild').result)
        // Built once; test, pre-release, a 10 % canary in production, promoted after the approval,
        // and production checked; every deploy pinned to the commit that was built.
        assertEquals(['build', 'deploy test', 'deploy prerelease', 'deploy --canary 10 production', 'canary promote',
                      'deploy production'], commands())
        assertTrue(cli.runs.findAll { it.argv[0] == 'deploy' }.every { it.argv[it.argv.indexOf('--commit') + 1] == COMMIT })
        String description = binding.getVariable('currentBuild').description
        ['test', 'prerelease', 'production'].each { ns ->
            assertTrue(description, description.contains("promoted ${DIGEST} to ${ns}/shop"))
        }
        assertTrue(description, description.contains("started canary production/shop-canary at 10 %: ${DIGEST}"))
        assertTrue(description, description.contains("promoted the canary of production/shop: ${DIGEST}"))
        // The canary was smoke-tested before anyone was asked to promote it.
        assertEquals(['Promote the canary to all of production?'], inputs*.message)
        assertEquals(8, inputs[0].timeoutHours)
        assertEquals([], mails)
        assertTrue(['preserveStashes', [[buildCount: 10]]] in pipeline.spec.optionsSection.calls)
    }

    @Test
    void onAFeatureBranchTheProductionStagesAreSkipped() {
        env().BRANCH_NAME = 'feature/login'
        runJenkinsfile()
        assertEquals(ALL_STAGES - PRODUCTION_STAGES, pipeline.ran())
        PRODUCTION_STAGES.each { assertEquals('SKIPPED_WHEN', pipeline.status(it)) }
        assertEquals(['test'], promotedNamespaces())
        assertEquals([], inputs)
        assertTrue(shellScripts.every { !it.contains('git tag') })
    }

    Map env() { binding.getVariable('env') as Map }

    @Test
    void aFailingSmokeTestStopsTheFlowAndMails() {
        smokeStatus = '502'
        runJenkinsfile()
        assertEquals('FAILURE', pipeline.status('Smoke tests'))
        assertEquals(ALL_STAGES.takeWhile { it != 'Smoke tests' } + ['Smoke tests'], pipeline.ran())
        ALL_STAGES.dropWhile { it != 'Regression' }.each { assertEquals('SKIPPED_EARLIER_FAILURE', pipeline.status(it)) }
        assertEquals(['test'], promotedNamespaces())
        assertEquals('FAILURE', binding.getVariable('currentBuild').result)
        assertEquals(1, mails.size())
        assertEquals('team-a@example.com,ops@example.com', mails[0].to)
        assertEquals('FAILED: team-a/shop #7', mails[0].subject.toString())
        assertTrue(mails[0].body.contains('pysteps jenkins rerun team-a/shop 7 --stage STAGE'))
    }

    @Test
    void aRestartedProductionStageShipsTheImageKeptByTheEarlierBuild() {
        runJenkinsfile()
        int earlierRuns = cli.runs.size()
        // A new build restarted at Production: nothing before it runs, the stash still holds the image.
        pipeline.restartFrom = 'Production'
        pipeline.stages = []
        runJenkinsfile()
        assertEquals(['Production'], pipeline.ran())
        List<Map> restarted = cli.runs.drop(earlierRuns)
        assertEquals(0, restarted.count { it.argv[0] == 'build' })
        assertEquals(['production'], restarted.findAll { !it.argv.contains('--dry-run') }.collect {
            (new JsonSlurper().parseText(it.files['overrides.json']) as Map).namespace
        })
        assertTrue(restarted.every { it.argv[it.argv.indexOf('--commit') + 1] == COMMIT })
    }

    @Test
    void secretsOfTheFlowNeverReachAShellScriptOrTheDescription() {
        runJenkinsfile()
        String seen = [shellScripts, cli.runs*.argv, cli.runs*.files, echoed,
                       binding.getVariable('currentBuild').description].toString()
        secrets().each { String s -> assertTrue("secret ${s.take(3)}... leaked", !seen.contains(s)) }
    }

    @Test
    void aFailingCanarySmokeTestAbortsTheCanaryAndStopsTheFlow() {
        smokeFailsFor = 'shop-production'
        runJenkinsfile()
        assertEquals('FAILURE', pipeline.status('Canary'))
        assertEquals('SKIPPED_EARLIER_FAILURE', pipeline.status('Production'))
        assertEquals(['build', 'deploy test', 'deploy prerelease', 'deploy --canary 10 production', 'canary status',
                      'canary abort'], commands())
        assertEquals(['canary', 'abort', '--namespace', 'production', '--', 'shop'], cli.runs[-1].argv)
        assertFalse(canaryRunning)
        assertEquals([], inputs)   // nobody is asked to promote a canary that failed its smoke test
        assertEquals('FAILURE', binding.getVariable('currentBuild').result)
        assertEquals(1, mails.size())
    }

    @Test
    void aRefusedPromotionAbortsTheCanaryAndTheBuild() {
        refuseInput = true
        runJenkinsfile()
        assertEquals('ABORTED', pipeline.status('Canary'))
        assertEquals('SKIPPED_EARLIER_FAILURE', pipeline.status('Production'))
        assertEquals(['Promote the canary to all of production?'], inputs*.message)
        // The approval came after the canary's smoke test.
        assertEquals(3, inputs[0].smokedBefore)
        assertEquals(['canary status', 'canary abort'], commands().takeRight(2))
        assertFalse(commands().contains('canary promote'))
        assertFalse(canaryRunning)
        assertEquals('ABORTED', binding.getVariable('currentBuild').result)
        assertEquals([], mails)   // a human decision, not a failure
    }

    @Test
    void aCanaryRefusedBeforeItStartsLeavesNothingToAbort() {
        // The registry's image for the commit is not the tested digest: the canary is planned,
        // refused, never started; the post step finds no canary and does not fail again.
        canaryImage = DIGEST.replace('b' * 64, '9' * 64)
        runJenkinsfile()
        assertEquals('FAILURE', pipeline.status('Canary'))
        assertEquals(['build', 'deploy test', 'deploy prerelease', 'canary status'], commands())
        assertTrue(pipeline.failure.message, pipeline.failure.message.startsWith('canaryApp: the canary would run'))
        assertEquals(1, mails.size())
    }

    @Test
    void aRefusedCanaryCanBeRestartedFromItsStageWithTheKeptDigest() {
        refuseInput = true
        runJenkinsfile()
        int earlierRuns = cli.runs.size()
        refuseInput = false
        pipeline.restartFrom = 'Canary'
        pipeline.stages = []
        runJenkinsfile()
        assertEquals(['Canary', 'Production'], pipeline.ran())
        List<Map> restarted = cli.runs.drop(earlierRuns)
        assertEquals(0, restarted.count { it.argv[0] == 'build' })
        Map canary = restarted.find { it.argv.contains('--canary') && !it.argv.contains('--dry-run') }
        assertEquals(COMMIT, canary.argv[canary.argv.indexOf('--commit') + 1])
        assertEquals(['canary', 'promote'], restarted.find { it.argv[0] == 'canary' }.argv.take(2))
        assertFalse(canaryRunning)
        assertEquals('SUCCESS', binding.getVariable('currentBuild').result)
    }
}
