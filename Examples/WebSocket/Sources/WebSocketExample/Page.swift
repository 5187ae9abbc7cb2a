/// A chat page for `/chat`: open it in two tabs and type. With `?auto=name` it joins, sends one
/// message, sets `#status` to "echoed" when the message comes back and leaves; it also loads
/// `/wait?room=...` as an image, which a test's server holds until the room is empty again, so
/// a headless browser's `--dump-dom` sees the page after the exchange.
let chatPage = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>Strata WebSocket chat</title>
    <style>
      body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
      #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; white-space: pre-wrap; }
      form { display: flex; gap: .5rem; margin-top: .5rem; } input[name=text] { flex: 1; }
    </style>
    </head>
    <body>
    <h1>Strata chat</h1>
    <p>Status: <span id="status">connecting</span></p>
    <div id="log"></div>
    <form id="form"><input name="text" autocomplete="off" placeholder="Say something"><button>Send</button></form>
    <script>
    const params = new URLSearchParams(location.search);
    const room = params.get("room") || "lobby";
    const auto = params.get("auto");
    const name = auto || "guest-" + Math.floor(Math.random() * 1000);
    const log = document.getElementById("log");
    const status = document.getElementById("status");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/chat?room=${encodeURIComponent(room)}`);
    function add(line) {
      const div = document.createElement("div");
      div.textContent = line;
      log.appendChild(div);
      log.scrollTop = log.scrollHeight;
    }
    socket.onopen = () => {
      status.textContent = "connected";
      if (auto) socket.send(`${name}: hello from the browser`);
    };
    socket.onmessage = (event) => {
      add(event.data);
      if (auto && event.data === `${name}: hello from the browser`) {
        status.textContent = "echoed";
        socket.close(1000, "done");
      }
    };
    if (auto) {
      const wait = document.createElement("img");
      wait.hidden = true;
      wait.src = `/wait?room=${encodeURIComponent(room)}`;
      document.body.appendChild(wait);
    }
    socket.onclose = (event) => { if (status.textContent !== "echoed") status.textContent = "closed " + event.code; };
    document.getElementById("form").onsubmit = (event) => {
      event.preventDefault();
      const input = event.target.elements.text;
      if (input.value && socket.readyState === WebSocket.OPEN) socket.send(`${name}: ${input.value}`);
      input.value = "";
    };
    </script>
    </body>
    </html>
    """
