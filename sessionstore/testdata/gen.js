// Generates the fixtures with the plugin's own serialisation: node gen.js (run in this directory).
const fs = require("fs");
// The plugin's file-name rule: the account id with every UTF-16 code unit outside [a-zA-Z0-9_-]
// replaced by "_" (so "ü.bot😀" becomes "__bot__": one unit for ü, two for the emoji).
const safeId = (id) => id.replace(/[^a-zA-Z0-9_-]/g, "_");
// w writes a record under the name its call site gives, which must be the plugin's own name for it.
const w = (name, state) => {
  const want = `session-${safeId(state.accountId)}.json`;
  if (name !== want) throw new Error(`${name}: the plugin names this record ${want}`);
  fs.writeFileSync(name, JSON.stringify(state, null, 2), "utf-8");
};
const saved = 1767225600000; // 2026-01-01T00:00:00Z
// As the plugin builds it: {...state, savedAt: Date.now()}, with appId from newer versions.
w("session-full.json", {sessionId: "c4b1e0a2-5f9d-4e36-9a1b-7d2f0e8c6a11", lastSeq: 42, lastConnectedAt: saved - 60000, intentLevelIndex: 1, accountId: "full", savedAt: saved, appId: "102005678"});
w("session-null-seq.json", {sessionId: "0d9e8f7a-1111-2222-3333-444455556666", lastSeq: null, lastConnectedAt: saved - 1000, intentLevelIndex: 0, accountId: "null-seq", savedAt: saved});
w("session-no-appid.json", {sessionId: "e1e2e3e4-aaaa-bbbb-cccc-ddddeeeeffff", lastSeq: 7, lastConnectedAt: saved - 5000, intentLevelIndex: 2, accountId: "no-appid", savedAt: saved});
w("session-extra.json", {sessionId: "f0f0f0f0-1234-5678-9abc-def012345678", lastSeq: 1001, lastConnectedAt: saved - 2000, intentLevelIndex: 0, accountId: "extra", savedAt: saved, appId: "102005678", shard: {index: 0, count: [1, 2], label: "a<b>&c \u2028 \"q\" 机器人"}});
w("session-null-session.json", {sessionId: null, lastSeq: null, lastConnectedAt: 0, intentLevelIndex: 3, accountId: "null-session", savedAt: saved});
w("session-__bot__.json", {sessionId: "s-uni", lastSeq: 5, lastConnectedAt: saved, intentLevelIndex: 0, accountId: "ü.bot😀", savedAt: saved});
// A torn write: the full record cut short. Its name is not the plugin's, on purpose.
const full = fs.readFileSync("session-full.json", "utf-8");
fs.writeFileSync("session-corrupt.json", full.slice(0, full.length - 40));
const ids = ["plain", "a.b", "a_b", "with space", "ü", "机器人", "😀", "x😀y", "tab\there", "-_-", "", "1234567890", "A/B\\C", "\u2028"];
const out = {};
for (const id of ids) out[id] = safeId(id);
fs.writeFileSync("safeid.json", JSON.stringify(out, null, 2));
