package pysteps

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertTrue
import static org.junit.Assert.fail

import org.codehaus.groovy.control.CompilationFailedException
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases
import org.codehaus.groovy.control.customizers.ImportCustomizer
import org.junit.Test

/**
 * Every Groovy file of the library compiles on Jenkins' Groovy line (2.4.21), down to class
 * generation, as groovyc (FileSystemCompiler) would: CodeNarc silently skips what it cannot
 * parse, so this check goes with it.
 */
class CompileCheckTest {

    static final File REPO = PipelineHarness.REPO

    static List<File> groovyFiles() {
        List<File> files = []
        ['vars', 'src', 'jobs'].each { String d ->
            File dir = new File(REPO, d)
            if (dir.directory) {
                dir.eachFileRecurse { File f -> if (f.name.endsWith('.groovy')) { files << f } }
            }
        }
        files << new File(REPO, 'Jenkinsfile.example')
        return files.sort()
    }

    static String compile(String name, String text) {
        CompilerConfiguration config = new CompilerConfiguration()
        config.targetDirectory = File.createTempDir()
        // Jenkins imports @Library implicitly; JenkinsPipelineUnit's annotation stands in for it.
        config.addCompilationCustomizers(new ImportCustomizer()
                .addImport('Library', 'com.lesfurets.jenkins.unit.global.lib.Library'))
        CompilationUnit unit = new CompilationUnit(config, null, new GroovyClassLoader(CompileCheckTest.classLoader))
        unit.addSource(name.replaceAll(/[^A-Za-z0-9_]/, '_') + '.groovy', text)
        try {
            unit.compile(Phases.CLASS_GENERATION)
            return null
        } catch (CompilationFailedException e) {
            return e.message
        } finally {
            config.targetDirectory.deleteDir()
        }
    }

    @Test
    void everyGroovyFileOfTheLibraryCompiles() {
        List<File> files = groovyFiles()
        assertTrue(files*.name.toString(), files*.name.containsAll(['deployApp.groovy', 'seed.groovy', 'Jenkinsfile.example']))
        Map<String, String> failures = files.collectEntries { File f -> [(f.path): compile(f.name, f.text)] }.findAll { it.value }
        assertEquals([:], failures)
    }

    @Test
    void theCheckCatchesABrokenFile() {
        String broken = new File(REPO, 'vars/deployApp.groovy').text.replaceFirst(/\)\s*\{/, ') {{')
        if (compile('broken', broken) == null) {
            fail('a file with an unbalanced brace compiled')
        }
    }
}
