/// The page a person (or the browser test) opens. It calls the API on another origin:
/// `?api=URL` names it; by default it swaps localhost and 127.0.0.1 on the same port.
/// With `?auto=1` it runs every check at once and writes the results as JSON into `#results`.
let examplePage = """
    <!doctype html>
    <html lang="en">
    <head><meta charset="utf-8"><title>Strata CORS example</title>
    <style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;line-height:1.4}
    button{margin:.2rem}pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap}</style></head>
    <body>
    <h1>Strata CORS example</h1>
    <p>This page's origin: <code id="page"></code><br>API origin: <code id="api"></code></p>
    <p>
      <button onclick="show(simpleGet)">Simple GET</button>
      <button onclick="show(credentialedGet)">Credentialed GET</button>
      <button onclick="show(preflightedPut)">Preflighted PUT</button>
      <button onclick="show(exposedHeader)">Read exposed header</button>
    </p>
    <pre id="out">Press a button. Failures show the browser's CORS error.</pre>
    <pre id="results"></pre>
    <script>
    const params = new URLSearchParams(location.search);
    const swapped = location.hostname === "localhost" ? "127.0.0.1" : "localhost";
    const api = params.get("api") || `${location.protocol}//${swapped}:${location.port}`;
    document.getElementById("page").textContent = location.origin;
    document.getElementById("api").textContent = api;

    async function simpleGet() {
      const response = await fetch(api + "/api/data");
      return { status: response.status, body: await response.json() };
    }
    async function credentialedGet() {
      const response = await fetch(api + "/api/data", { credentials: "include" });
      return { status: response.status, body: await response.json() };
    }
    async function preflightedPut() {
      const response = await fetch(api + "/api/data", {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-Custom": "yes" },
        body: JSON.stringify({ message: "stored by a cross-origin PUT" }),
      });
      return { status: response.status, body: await response.json() };
    }
    async function exposedHeader() {
      const response = await fetch(api + "/api/data");
      return { count: response.headers.get("X-Request-Count"), secret: response.headers.get("X-Secret") };
    }
    async function attempt(check) {
      try { return { ok: true, value: await check() }; }
      catch (error) { return { ok: false, error: String(error) }; }
    }
    async function show(check) {
      document.getElementById("out").textContent = JSON.stringify(await attempt(check), null, 2);
    }
    if (params.get("auto") === "1") {
      (async () => {
        const results = {};
        for (const check of [simpleGet, credentialedGet, preflightedPut, exposedHeader]) {
          results[check.name] = await attempt(check);
        }
        document.getElementById("results").textContent = "RESULTS " + JSON.stringify(results);
      })();
    }
    </script>
    </body>
    </html>
    """
