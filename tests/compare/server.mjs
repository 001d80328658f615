// The stock @automerge/automerge-repo-sync-server, started on 127.0.0.1 only.
//
// Its entry point calls `app.listen(PORT)`, which listens on every interface; this wrapper
// makes every listen in this process bind loopback, then runs the stock entry point unchanged
// (PORT and DATA_DIR from the environment, as it reads them).
//
// For the benchmark only, a second loopback port (CONTROL_PORT) answers `GET /flush`: it
// writes every document the server holds to its storage and answers when that is done, so a
// measured upload ends when the data is on the server's disk, as ours does. The server itself
// is not changed: the hook reaches its Repo by watching the Repo's first event.
import http from "node:http"
import { Repo } from "@automerge/automerge-repo"

const LOOPBACK = "127.0.0.1"

const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (port, ...rest) {
  const callback = rest.find(arg => typeof arg === "function")
  return listen.call(this, port, LOOPBACK, callback)
}

let serverRepo
const emit = Repo.prototype.emit
Repo.prototype.emit = function (...args) {
  serverRepo ??= this
  return emit.apply(this, args)
}

const control = Number(process.env.CONTROL_PORT ?? 0)
if (control > 0) {
  http
    .createServer(async (req, res) => {
      try {
        if (req.url === "/flush") {
          if (serverRepo) await serverRepo.flush()
          res.end(JSON.stringify({ documents: Object.keys(serverRepo?.handles ?? {}).length }))
        } else {
          res.statusCode = 404
          res.end("not found")
        }
      } catch (e) {
        res.statusCode = 500
        res.end(String(e))
      }
    })
    .listen(control)
}

await import("@automerge/automerge-repo-sync-server")
