// Job DSL seed: one multibranch pipeline job per app of jobs/apps.yaml, in a folder per team.
// Run by the seed job ("Process Job DSLs", script jobs/seed.groovy) from a checkout of the
// library repository; check the catalog first with `pysteps jobs validate jobs/apps.yaml`.
import org.yaml.snakeyaml.Yaml

Map catalog = new Yaml().load(readFileFromWorkspace('jobs/apps.yaml')) as Map
List<Map> apps = catalog.apps as List<Map>

apps.groupBy { Map app -> app.team }.each { String team, List<Map> teamApps ->
    folder(team) {
        displayName(team)
        description("Apps of ${team}, made by the seed job from jobs/apps.yaml. Do not edit by hand.")
    }
    teamApps.each { Map app ->
        String script = app.script ?: 'Jenkinsfile'
        multibranchPipelineJob("${team}/${app.app}") {
            description("${app.app}: ${app.repository} (production branch ${app.branch}); " +
                        "failures to ${(app.recipients as List).join(', ')}. Made by the seed job.")
            branchSources {
                git {
                    id("${team}-${app.app}")
                    remote(app.repository as String)
                    credentialsId((app.credentials ?: 'gitlab-checkout') as String)
                }
            }
            factory {
                workflowBranchProjectFactory {
                    scriptPath(script)
                }
            }
            orphanedItemStrategy {
                discardOldItems {
                    numToKeep(20)
                }
            }
        }
    }
}
