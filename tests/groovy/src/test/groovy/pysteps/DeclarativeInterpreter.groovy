package pysteps

/**
 * An interpreter of the declarative `pipeline {}` sections Jenkinsfile.example uses: agent,
 * options, environment, stages/stage, when { branch }, steps, stage and pipeline post
 * (always/success/failure/aborted/unsuccessful). It is NOT Jenkins' own pipeline-model-definition validator or
 * runtime (JenkinsPipelineUnit 1.1 has none, and Jenkins cannot be had here): it runs the
 * stages in order as Jenkins does, skips a stage whose `when` is false, stops at the first
 * failure (later stages are skipped; an abort, such as a refused input, makes the stage and
 * the build ABORTED instead of FAILURE), runs post conditions, and can start at a named stage as
 * "Restart from Stage" does (earlier stages are not run; stashes come from the earlier build).
 */
class DeclarativeInterpreter {
    final PipelineHarness harness
    PipelineSpec spec
    /** [stage: name, status: 'SUCCESS' | 'FAILURE' | 'ABORTED' | 'SKIPPED_WHEN' | 'SKIPPED_EARLIER_FAILURE' | 'NOT_RESTARTED'] */
    List<Map> stages = []
    Throwable failure
    String restartFrom

    DeclarativeInterpreter(PipelineHarness harness) {
        this.harness = harness
        harness.helper.registerAllowedMethod('pipeline', [Closure], { Closure body -> run(body) })
    }

    void run(Closure body) {
        spec = new PipelineSpec()
        failure = null   // a new build (a restart too) starts without the earlier one's failure
        configure(body, spec)
        Map env = harness.binding.getVariable('env') as Map
        env.putAll(spec.environmentValues)
        if (restartFrom && !spec.stageList.find { it.name == restartFrom }) {
            throw new IllegalArgumentException("no top-level stage '${restartFrom}'")
        }
        boolean reached = restartFrom == null
        for (StageSpec stage : spec.stageList) {
            reached = reached || stage.name == restartFrom
            if (!reached) {
                stages << [stage: stage.name, status: 'NOT_RESTARTED']
                continue
            }
            if (failure != null) {
                stages << [stage: stage.name, status: 'SKIPPED_EARLIER_FAILURE']
                continue
            }
            if (stage.condition != null && !stage.condition.passes(env)) {
                stages << [stage: stage.name, status: 'SKIPPED_WHEN']
                continue
            }
            try {
                stage.body.call()
                stages << [stage: stage.name, status: 'SUCCESS']
                runPost(stage.postSection, 'success')
            } catch (Throwable t) {
                failure = t
                stages << [stage: stage.name, status: resultOf(t)]
                runPost(stage.postSection, resultOf(t).toLowerCase())
                runPost(stage.postSection, 'unsuccessful')
            } finally {
                runPost(stage.postSection, 'always')
            }
        }
        Map build = harness.binding.getVariable('currentBuild') as Map
        build.result = failure ? resultOf(failure) : 'SUCCESS'
        build.currentResult = build.result
        runPost(spec.postSection, (build.result as String).toLowerCase())
        if (failure) {
            runPost(spec.postSection, 'unsuccessful')
        }
        runPost(spec.postSection, 'always')
    }

    /** A refused input or an expired timeout aborts (FlowInterruptedException); the rest fails. */
    static String resultOf(Throwable t) { t instanceof PipelineAborted ? 'ABORTED' : 'FAILURE' }

    List<String> ran() { stages.findAll { it.status in ['SUCCESS', 'FAILURE', 'ABORTED'] }*.stage }

    String status(String stage) { stages.find { it.stage == stage }?.status }

    static void runPost(PostSpec post, String condition) {
        Closure body = post?.conditions?.get(condition)
        if (body != null) {
            body.call()
        }
    }

    static Object configure(Closure body, Object delegate) {
        Closure c = body.rehydrate(delegate, body.owner, body.thisObject)
        c.resolveStrategy = Closure.DELEGATE_FIRST
        return c.call()
    }
}

/** Records calls of a section whose content is only declared (agent, options). */
class Recorder {
    List<List> calls = []

    Object methodMissing(String name, Object args) {
        calls << [name, args as List]
        return [name: name, args: args as List]
    }

    Object propertyMissing(String name) { name }
}

class PipelineSpec {
    Recorder agentSection = new Recorder()
    Recorder optionsSection = new Recorder()
    Map<String, String> environmentValues = [:]
    List<StageSpec> stageList = []
    PostSpec postSection

    void agent(Closure body) { DeclarativeInterpreter.configure(body, agentSection) }

    void options(Closure body) { DeclarativeInterpreter.configure(body, optionsSection) }

    void environment(Closure body) { DeclarativeInterpreter.configure(body, new EnvironmentSpec(environmentValues)) }

    void stages(Closure body) { DeclarativeInterpreter.configure(body, new StagesSpec(stageList)) }

    void post(Closure body) { postSection = new PostSpec(); DeclarativeInterpreter.configure(body, postSection) }
}

class EnvironmentSpec {
    Map<String, String> values

    EnvironmentSpec(Map<String, String> values) { this.values = values }

    void propertyMissing(String name, Object value) { values[name] = value as String }
}

class StagesSpec {
    List<StageSpec> stages

    StagesSpec(List<StageSpec> stages) { this.stages = stages }

    void stage(String name, Closure body) {
        StageSpec s = new StageSpec(name: name)
        DeclarativeInterpreter.configure(body, s)
        if (s.body == null) {
            throw new IllegalStateException("stage '${name}' has no steps")
        }
        if (stages.find { it.name == name }) {
            throw new IllegalStateException("stage '${name}' is declared twice")
        }
        stages << s
    }
}

class StageSpec {
    String name
    WhenSpec condition
    Closure body
    PostSpec postSection

    void when(Closure c) { condition = new WhenSpec(); DeclarativeInterpreter.configure(c, condition) }

    void steps(Closure c) { body = c }

    void post(Closure c) { postSection = new PostSpec(); DeclarativeInterpreter.configure(c, postSection) }
}

class WhenSpec {
    List<String> branches = []

    void branch(String pattern) { branches << pattern }

    /** `branch` compares BRANCH_NAME with an Ant-style pattern, as Jenkins' BranchConditional does. */
    boolean passes(Map env) {
        String name = env.BRANCH_NAME
        return branches.every { String p ->
            name != null && name ==~ p.replace('.', '\\.').replace('**', '\u0000').replace('*', '[^/]*').replace('\u0000', '.*').replace('?', '.')
        }
    }
}

class PostSpec {
    Map<String, Closure> conditions = [:]

    void always(Closure body) { conditions.always = body }

    void success(Closure body) { conditions.success = body }

    void failure(Closure body) { conditions.failure = body }

    void aborted(Closure body) { conditions.aborted = body }

    void unsuccessful(Closure body) { conditions.unsuccessful = body }
}
