// smokeTest: poll an app's URL until it answers as expected, within a time bound.
// curl runs as constant shell text; the URL and Host header reach it as environment values.

@groovy.transform.Field
static final String CURL = 'curl -sS -o "$SMOKE_BODY" -w "%{http_code}" --max-time "$SMOKE_REQUEST_TIMEOUT" "$SMOKE_URL" || true'
@groovy.transform.Field
static final String CURL_WITH_HOST = 'curl -sS -o "$SMOKE_BODY" -w "%{http_code}" --max-time "$SMOKE_REQUEST_TIMEOUT" -H "Host: $SMOKE_HOST" "$SMOKE_URL" || true'

Map call(Map config = [:]) {
    Map defaults = [
        url           : null,   // e.g. the first of deployApp's result.urls
        host          : null,   // Host header, to go through the edge by the app's domain
        expectStatus  : 200,
        expectText    : null,   // text the body must contain
        timeoutSeconds: 120,
        intervalSeconds: 5,
        requestTimeoutSeconds: 10,
    ]
    Map cfg = defaults + config
    List unknown = (config.keySet() - defaults.keySet()) as List
    if (unknown) {
        error("smokeTest: unknown option(s) ${unknown.join(', ')}; see smokeTest's help")
    }
    String url = cfg.url
    if (!(url ==~ /https?:\/\/[A-Za-z0-9.\-\[\]:]+(\/[A-Za-z0-9._~\/?=&%\-]*)?/)) {
        error("smokeTest: url '${url}' is not an http(s) URL such as http://shop.ctest.example.com/health")
    }
    if (cfg.host && !(cfg.host ==~ /[a-z0-9]([a-z0-9.\-]{0,251}[a-z0-9])?(:[0-9]{1,5})?/)) {
        error("smokeTest: host '${cfg.host}' is not a host name")
    }
    String workDir = pystepsCli.newWorkDir('smokeTest')
    String body = "${workDir}/body"
    // Bounded by attempts rather than the clock, so the bound holds however long a request takes.
    int maxAttempts = Math.max(1, (cfg.timeoutSeconds as int).intdiv(cfg.intervalSeconds as int) + 1)
    int attempts = 0
    String last = ''
    while (true) {
        attempts++
        String status
        withEnv(["SMOKE_URL=${url}", "SMOKE_HOST=${cfg.host ?: ''}", "SMOKE_BODY=${body}",
                 "SMOKE_REQUEST_TIMEOUT=${cfg.requestTimeoutSeconds}"]) {
            status = sh(script: cfg.host ? CURL_WITH_HOST : CURL, returnStdout: true).trim()
        }
        String text = fileExists(body) ? readFile(body) : ''
        boolean statusOk = status == "${cfg.expectStatus}"
        boolean textOk = !cfg.expectText || text.contains(cfg.expectText as String)
        if (statusOk && textOk) {
            echo "smokeTest: ${url} answered ${status} after ${attempts} attempt(s)"
            pystepsCli.describeBuild("smoke test passed: ${url}")
            return [ok: true, url: url, status: status as int, attempts: attempts]
        }
        last = statusOk ? "status ${status} but the body lacks '${cfg.expectText}'" : "status ${status ?: 'none'}"
        if (attempts >= maxAttempts) {
            break
        }
        sleep(time: cfg.intervalSeconds as int, unit: 'SECONDS')
    }
    error("smokeTest: ${url} did not answer ${cfg.expectStatus} within ${cfg.timeoutSeconds} s " +
          "(${attempts} attempts; last: ${last})")
}
