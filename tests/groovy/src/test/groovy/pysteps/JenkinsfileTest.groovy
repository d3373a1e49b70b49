package pysteps

import static org.junit.Assert.assertEquals
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
            Map overrides = new JsonSlurper().parse(new File(argv[argv.indexOf('--overrides') + 1] as String)) as Map
            String ns = overrides.namespace
            // What the registry holds for the commit: the digest built once.
            String image = argv[argv.indexOf('--commit') + 1] == COMMIT ? DIGEST : null
            return [rc: 0, result: [ok: true, namespace: ns, name: 'shop', image: image, commit: COMMIT,
                                    urls: ["http://shop-${ns}.ctest.example.com/".toString()]]]
        }
        shHandler = { Map c ->
            if (c.script.contains('run-cli.py') || c.script.contains('install-pysteps.sh')) {
                return cli.handle(c)
            }
            shellScripts << c.script
            if (c.script.startsWith('curl')) {
                new File(c.env.SMOKE_BODY as String).text = 'ok'
                return [0, smokeStatus]
            }
            return [0, '']
        }
        helper.registerAllowedMethod('script', [Closure], { Closure body -> body() })
        helper.registerAllowedMethod('checkout', [Map], { Map m -> })
        helper.registerAllowedMethod('timeout', [Map, Closure], { Map m, Closure body -> body() })
        helper.registerAllowedMethod('input', [Map], { Map m -> inputs << m })
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
        // Built once, promoted four times, every deploy pinned to the commit that was built.
        assertEquals(1, cli.runs.count { it.argv[0] == 'build' })
        assertEquals(['test', 'prerelease', 'canary', 'production'], promotedNamespaces())
        assertTrue(cli.runs.findAll { it.argv[0] == 'deploy' }.every { it.argv[it.argv.indexOf('--commit') + 1] == COMMIT })
        String description = binding.getVariable('currentBuild').description
        ['test', 'prerelease', 'canary', 'production'].each { ns ->
            assertTrue(description, description.contains("promoted ${DIGEST} to ${ns}/shop"))
        }
        assertEquals(['Start the canary in production?', 'Ship to production?'], inputs*.message)
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
}
