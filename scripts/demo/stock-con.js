// Stock price consumer: polls the generator it finds in STOCK_GEN_URL (the
// cluster env kubesh hands to every program) and serves moving averages.
//   GET /healthz  ok once prices arrive
//   GET /average  the average of the last 10 prices of each symbol, as JSON
// Runs in the background (`node stock-con.js &`), listening on $PORT.
const http = require("http");

const generator = process.env.STOCK_GEN_URL;
const window = {};
let server = null;

function poll() {
  http
    .get(`${generator}/stockdata`, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        try {
          for (const { symbol, price } of JSON.parse(body)) {
            window[symbol] = (window[symbol] || []).concat(price).slice(-10);
          }
          // Listen once the first prices are in: ready means healthy.
          if (!server) server = serve();
        } catch (error) {
          console.error("bad answer from the generator:", error.message);
        }
      });
    })
    .on("error", (error) => console.error("generator unreachable:", error.message));
}

setInterval(poll, 200);
poll();

function serve() {
  return http
  .createServer((req, res) => {
    const ready = Object.keys(window).length > 0;
    if (req.url === "/healthz") {
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? "ok\n" : "waiting for prices\n");
    } else if (req.url === "/average") {
      const averages = {};
      for (const [symbol, prices] of Object.entries(window)) {
        averages[symbol] = +(prices.reduce((a, b) => a + b, 0) / prices.length).toFixed(2);
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(averages) + "\n");
    } else {
      res.writeHead(404);
      res.end("try /healthz or /average\n");
    }
  })
  .listen(Number(process.env.PORT));
}
console.log(`consuming ${generator}`);
