// CodeNarc rule set for the library's Groovy (vars/, src/, jobs/, Jenkinsfile.example) and these tests.
// Run: make groovy-lint. Rules that fight Jenkins' conventions are switched off, with the reason.
ruleset {
    ruleset('rulesets/basic.xml')
    ruleset('rulesets/braces.xml')
    ruleset('rulesets/exceptions.xml') {
        // Pipeline steps fail by throwing; tests catch Throwable to record a failed stage.
        exclude 'CatchThrowable'
        exclude 'ThrowRuntimeException'
    }
    ruleset('rulesets/imports.xml') {
        exclude 'NoWildcardImports'
    }
    ruleset('rulesets/naming.xml') {
        // JUnit test names are sentences; Jenkinsfile-like scripts have no class name.
        exclude 'MethodName'
        exclude 'FactoryMethodName'
        exclude 'ClassName'
        // Constants of a vars/ script (@Field static final) are UPPER_CASE, as in a class.
        // `@Library('pysteps') _` is how a Jenkinsfile loads a library.
        'VariableName' {
            finalRegex = /[A-Z][A-Z0-9_]*/
            ignoreVariableNames = '_'
        }
    }
    ruleset('rulesets/unused.xml') {
        'UnusedVariable' { ignoreVariableNames = '_' }
    }
    ruleset('rulesets/unnecessary.xml') {
        // Jenkins steps read better with explicit returns and GStrings.
        exclude 'UnnecessaryReturnKeyword'
        exclude 'UnnecessaryGString'
        exclude 'UnnecessaryGetter'
        exclude 'UnnecessarySetter'
        exclude 'UnnecessaryToString'
        exclude 'UnnecessaryCast'
        exclude 'UnnecessaryObjectReferences'
    }
    ruleset('rulesets/security.xml') {
        exclude 'JavaIoPackageAccess'   // the tests work on real temporary files
    }
}
