package pysteps

import static org.junit.Assert.assertEquals

import org.junit.Test

/**
 * jobs/seed.groovy against a RECORDING STAND-IN of the Job DSL API (job-dsl-core is not on
 * Maven Central): folder/multibranchPipelineJob and their nested blocks are recorded as a
 * tree. It checks the structure the seed asks for; it cannot tell a misspelt DSL method.
 */
class SeedTest {

    static final File REPO = PipelineHarness.REPO

    RecordingDsl runSeed(String catalog = null) {
        def config = new org.codehaus.groovy.control.CompilerConfiguration()
        config.scriptBaseClass = RecordingDsl.name
        def shell = new GroovyShell(this.class.classLoader, new Binding(), config)
        RecordingDsl dsl = shell.parse(new File(REPO, 'jobs/seed.groovy')) as RecordingDsl
        dsl.binding.setVariable('seedWorkspace', REPO)
        if (catalog != null) {
            File ws = File.createTempDir()
            new File(ws, 'jobs').mkdirs()
            new File(ws, 'jobs/apps.yaml').text = catalog
            dsl.binding.setVariable('seedWorkspace', ws)
        }
        dsl.run()
        return dsl
    }

    @Test
    void oneJobPerCatalogEntryWithItsRepositoryAndScriptPath() {
        List<Map> apps = new org.yaml.snakeyaml.Yaml().load(new File(REPO, 'jobs/apps.yaml').text).apps as List<Map>
        RecordingDsl dsl = runSeed()
        assertEquals(apps.collect { "${it.team}/${it.app}".toString() } as Set, dsl.jobs.keySet())
        assertEquals(apps*.team as Set, dsl.folders.keySet())
        apps.each { Map app ->
            DslBlock job = dsl.jobs["${app.team}/${app.app}".toString()]
            assertEquals(app.repository, job.get('branchSources.git.remote'))
            assertEquals(app.script ?: 'Jenkinsfile', job.get('factory.workflowBranchProjectFactory.scriptPath'))
            assertEquals(app.credentials ?: 'gitlab-checkout', job.get('branchSources.git.credentialsId'))
        }
    }

    @Test
    void aSmallCatalogMakesExactlyItsJobs() {
        RecordingDsl dsl = runSeed('''apps:
  - {app: one, team: t1, repository: "https://gitlab.example.com/t1/one.git", branch: main, recipients: [a@example.com]}
  - {app: two, team: t2, repository: "https://gitlab.example.com/t2/two.git", branch: main, recipients: [b@example.com], script: build/Jenkinsfile}
''')
        assertEquals(['t1/one', 't2/two'] as Set, dsl.jobs.keySet())
        assertEquals('https://gitlab.example.com/t2/two.git', dsl.jobs['t2/two'].get('branchSources.git.remote'))
        assertEquals('build/Jenkinsfile', dsl.jobs['t2/two'].get('factory.workflowBranchProjectFactory.scriptPath'))
    }
}
