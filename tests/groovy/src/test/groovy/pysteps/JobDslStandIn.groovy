package pysteps

// A RECORDING STAND-IN of the Job DSL API (job-dsl-core is not on Maven Central), used by SeedTest.

/** A DSL block: every call inside it is recorded as name -> value or nested block. */
class DslBlock {
    Map<String, Object> values = [:]

    Object methodMissing(String name, Object args) {
        List a = args as List
        if (a && a[-1] instanceof Closure) {
            DslBlock inner = new DslBlock()
            Closure c = (a[-1] as Closure).rehydrate(inner, this, this)
            c.resolveStrategy = Closure.DELEGATE_ONLY
            c.call()
            values[name] = a.size() > 1 ? [arg: a[0], block: inner] : inner
        } else {
            values[name] = a.size() == 1 ? a[0] : a
        }
        return null
    }

    Object get(String path) {
        path.split('\\.').inject(this) { Object node, String key ->
            node instanceof DslBlock ? (node as DslBlock).values[key] : null
        }
    }
}

/** The seed's view of Jenkins: the DSL entry points plus readFileFromWorkspace. */
abstract class RecordingDsl extends Script {
    Map<String, DslBlock> folders = [:]
    Map<String, DslBlock> jobs = [:]

    String readFileFromWorkspace(String path) { new File(binding.getVariable('seedWorkspace') as File, path).text }

    void folder(String name, Closure body) { folders[name] = record(body) }

    void multibranchPipelineJob(String name, Closure body) {
        if (jobs.containsKey(name)) {
            throw new IllegalStateException("job ${name} made twice")
        }
        jobs[name] = record(body)
    }

    static DslBlock record(Closure body) {
        DslBlock b = new DslBlock()
        Closure c = body.rehydrate(b, b, b)
        c.resolveStrategy = Closure.DELEGATE_ONLY
        c.call()
        return b
    }
}

