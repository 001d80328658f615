// automerge-repo clients for the side-by-side benchmark, one step per run, driven by the
// `compare` binary (tests/src/bin/compare.rs). Each run prints JSON lines on stdout.
//
//   prepare     --dir D --input FILE    put the dossiers (length-prefixed Automerge files) in a
//                                       device's storage, offline; writes D/ids.json
//   push        --dir D --url --control the device goes online and uploads everything; ends
//                                       when the server holds every heads and has flushed
//   pull        --dir D --url --ids F   an empty device fetches every dossier; ends when all
//                                       are on its disk
//   live        --dir D --url --ids F   a device in sync, reporting each edit it sees
//   edit        --dir D --url --ids F   a device in sync that makes --edits edits, one by one
//   reconnect   --dir D --url --ids F   a device that already holds everything reconnects;
//                                       ends when every dossier is known to be in sync
//   connections --url --count K         K idle devices (join handshake done), until stdin ends
import fs from "node:fs"
import { createHash, randomUUID } from "node:crypto"
import path from "node:path"
import { parseArgs } from "node:util"
import {
  Repo,
  RawString,
  cbor,
  generateAutomergeUrl,
  parseAutomergeUrl,
} from "@automerge/automerge-repo"
import { next as A } from "@automerge/automerge"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import WebSocket from "ws"

const { positionals, values: opt } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: "string" },
    input: { type: "string" },
    ids: { type: "string" },
    url: { type: "string" },
    control: { type: "string" },
    edits: { type: "string", default: "7" },
    count: { type: "string", default: "0" },
  },
})

const say = value => process.stdout.write(JSON.stringify(value) + "\n")
const now = () => performance.timeOrigin + performance.now()
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function need(name) {
  if (!opt[name]) throw new Error(`--${name} is required`)
  return opt[name]
}

// The file adapter, counting its writes in progress: a client must not exit (or be killed)
// while one is half done, or the next step finds a truncated file that never loads. The repo
// saves sync states on a timer that flush() does not wait for, so the count is what tells.
class TrackedStorage extends NodeFSStorageAdapter {
  writing = new Set()
  lastStarted = 0
  track(promise) {
    this.lastStarted = now()
    this.writing.add(promise)
    promise.finally(() => this.writing.delete(promise)).catch(() => {})
    return promise
  }
  save(key, binary) {
    return this.track(super.save(key, binary))
  }
  remove(key) {
    return this.track(super.remove(key))
  }
  removeRange(prefix) {
    return this.track(super.removeRange(prefix))
  }
  // Resolves once no write is in progress and none has started for a while.
  async settled() {
    for (;;) {
      await Promise.allSettled([...this.writing])
      const quiet = now() - this.lastStarted
      if (this.writing.size === 0 && quiet >= 500) return
      await sleep(Math.max(50, 500 - quiet))
    }
  }
}

let storage

function device(withNetwork) {
  storage = new TrackedStorage(need("dir"))
  return new Repo({
    storage,
    network: withNetwork ? [new BrowserWebSocketClientAdapter(need("url"))] : [],
    peerId: `bench-${positionals[0]}-${process.pid}`,
  })
}

function readIds() {
  return JSON.parse(fs.readFileSync(need("ids"), "utf8"))
}

async function serverStorageId(repo) {
  for (;;) {
    const peer = repo.peers[0]
    const id = peer && repo.getStorageIdOfPeer(peer)
    if (id) return id
    await sleep(5)
  }
}

const sameHeads = (a, b) =>
  Array.isArray(a) && a.length === b.length && a.every(h => b.includes(h))

// Resolves once the server is known to hold every handle's heads.
async function inSync(repo, handles) {
  const storageId = await serverStorageId(repo)
  let waiting = 0
  let done
  const all = new Promise(resolve => (done = resolve))
  for (const handle of handles) {
    const synced = () => sameHeads(handle.getRemoteHeads(storageId), A.getHeads(handle.docSync()))
    if (synced()) continue
    waiting += 1
    const check = () => {
      if (!synced()) return
      handle.off("remote-heads", check)
      handle.off("heads-changed", check)
      waiting -= 1
      if (waiting === 0) done()
    }
    handle.on("remote-heads", check)
    handle.on("heads-changed", check)
  }
  if (waiting > 0) await all
}

// Every handle ready. Not through whenReady(): it gives up after 60 s, and thousands of
// documents take longer than that to load and sync here (the driver's timeout applies).
async function openAll(repo, ids) {
  const handles = ids.map(id => repo.find(id))
  while (handles.some(h => !h.isReady())) await sleep(20)
  return handles
}

const steps = {
  async prepare() {
    // Written through the storage adapter's own interface, one snapshot chunk per document
    // (as a repo's compacted save leaves it): importing through a Repo takes longer than the
    // measurement itself at 10,000 documents, and this is set-up, not measured.
    const input = fs.readFileSync(need("input"))
    const storage = new NodeFSStorageAdapter(need("dir"))
    const ids = []
    const writes = []
    for (let at = 0; at < input.length; ) {
      const length = input.readUInt32LE(at)
      const bytes = input.subarray(at + 4, at + 4 + length)
      A.load(bytes) // only documents that load
      const { documentId } = parseAutomergeUrl(generateAutomergeUrl())
      const hash = createHash("sha256").update(bytes).digest("hex")
      writes.push(storage.save([documentId, "snapshot", hash], bytes))
      ids.push(documentId)
      at += 4 + length
      if (writes.length >= 256) await Promise.all(writes.splice(0))
    }
    await Promise.all(writes)
    fs.writeFileSync(path.join(need("dir"), "ids.json"), JSON.stringify(ids))
    say({ docs: ids.length })
  },

  async push() {
    const ids = JSON.parse(fs.readFileSync(path.join(need("dir"), "ids.json"), "utf8"))
    const started = now()
    const repo = device(true)
    const handles = await openAll(repo, ids)
    await inSync(repo, handles)
    const flushed = await fetch(`${need("control")}/flush`)
    if (!flushed.ok) throw new Error(`server flush: ${await flushed.text()}`)
    say({ seconds: (now() - started) / 1000, server: await flushed.json() })
  },

  async pull() {
    const ids = readIds()
    const started = now()
    const repo = device(true)
    await openAll(repo, ids)
    await repo.flush()
    say({ seconds: (now() - started) / 1000 })
  },

  async reconnect() {
    const ids = readIds()
    const started = now()
    const repo = device(true)
    const handles = await openAll(repo, ids)
    await inSync(repo, handles)
    say({ seconds: (now() - started) / 1000 })
  },

  async live() {
    const repo = device(true)
    const handles = await openAll(repo, readIds())
    await inSync(repo, handles)
    const seen = new Set()
    for (const handle of handles) {
      handle.on("change", ({ doc }) => {
        const value = String(doc.profile?.website ?? "")
        if (value.startsWith("edited-") && !seen.has(value)) {
          seen.add(value)
          say({ seen: value, at: now() })
        }
      })
    }
    say({ ready: true })
    await untilStdinEnds()
  },

  async edit() {
    const ids = readIds()
    const repo = device(true)
    const handles = await openAll(repo, ids)
    await inSync(repo, handles)
    say({ ready: true })
    for (let round = 0; round < Number(opt.edits); round++) {
      // The same dossiers as the Rust side edits.
      const handle = handles[(round * 7919) % handles.length]
      const value = `edited-${round}`
      const at = now()
      handle.change(d => {
        d.profile.website = new RawString(value)
      })
      say({ edit: value, at })
      await inSync(repo, [handle])
      await sleep(200)
    }
    say({ done: true })
    await untilStdinEnds()
  },

  async connections() {
    const count = Number(opt.count)
    const sockets = []
    const open = i =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(need("url"))
        ws.binaryType = "arraybuffer"
        ws.on("open", () =>
          ws.send(
            cbor.encode({
              type: "join",
              senderId: `idle-${process.pid}-${i}`,
              peerMetadata: { storageId: randomUUID(), isEphemeral: false },
              supportedProtocolVersions: ["1"],
            }),
          ),
        )
        ws.once("message", () => resolve(ws))
        ws.on("error", reject)
      })
    for (let i = 0; i < count; i += 100) {
      const batch = []
      for (let j = i; j < Math.min(count, i + 100); j++) batch.push(open(j))
      sockets.push(...(await Promise.all(batch)))
    }
    say({ ready: sockets.length })
    await untilStdinEnds()
    for (const ws of sockets) ws.terminate()
  },
}

function untilStdinEnds() {
  return new Promise(resolve => {
    process.stdin.on("end", resolve)
    process.stdin.on("error", resolve)
    process.stdin.resume()
  })
}

const step = steps[positionals[0]]
if (!step) {
  console.error(`usage: client.mjs ${Object.keys(steps).join("|")} [options]`)
  process.exit(2)
}
try {
  await step()
  // Every step's result is out; what the repo still writes must reach the disk whole.
  if (storage) await storage.settled()
  process.exit(0)
} catch (e) {
  console.error(`client ${positionals[0]}: ${e?.stack ?? e}`)
  process.exit(1)
}
