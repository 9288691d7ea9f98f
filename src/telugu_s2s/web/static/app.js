// telugu-s2s browser demo: microphone -> WebSocket -> gateway; reply audio plays as it arrives.
"use strict";
const RATE = 16000;
const $ = (id) => document.getElementById(id);
const state = { ws: null, ctx: null, stream: null, node: null, sessionId: "", playHead: 0,
                sources: [], turns: new Map(), currentTurn: null, talking: false };

function log(text, cls) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (cls) li.className = cls;
  $("log").prepend(li);
}
function status(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + (cls || "idle"); }

function stopPlayback() {
  for (const s of state.sources) { try { s.stop(); } catch (e) { /* already ended */ } }
  state.sources = [];
  state.playHead = 0;
}

function playChunk(buf) {
  const pcm = new Int16Array(buf);
  if (!pcm.length || !state.ctx) return;
  const audio = state.ctx.createBuffer(1, pcm.length, RATE);
  const ch = audio.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  const src = state.ctx.createBufferSource();
  src.buffer = audio;
  src.connect(state.ctx.destination);
  const now = state.ctx.currentTime;
  state.playHead = Math.max(state.playHead, now + 0.02);
  src.start(state.playHead);
  state.playHead += audio.duration;
  state.sources.push(src);
  src.onended = () => { state.sources = state.sources.filter((s) => s !== src); };
  const t = state.turns.get(state.currentTurn);
  if (t) { t.chunks += 1; if (t.chunks === 1) log(`reply audio playing (turn ${t.id})`); }
}

function addTurnRow(t) {
  const tr = document.createElement("tr");
  tr.id = "turn-" + t.id;
  tr.innerHTML = `<td title="${t.id}">${t.id.slice(0, 8)}</td><td>${t.voice}</td><td class="ms">…</td><td class="rl">…</td><td class="v2v">…</td><td class="ff">…</td><td class="fd">…</td><td class="flag"></td>`;
  $("turn-table").querySelector("tbody").prepend(tr);
}

function onEvent(ev) {
  switch (ev.type) {
    case "session_started":
      state.sessionId = ev.session_id;
      $("session").textContent = ev.session_id.slice(0, 8) + "…";
      $("turns").textContent = ev.turns_in_context;
      log(`session ${ev.resumed ? "resumed" : "started"}: voice ${ev.voice}, ${ev.turns_in_context} turns in context`);
      if (ev.untrained_model) log("the service runs on UNTRAINED weights: replies are noise", "error");
      status("Listening… speak Telugu.", "listening");
      break;
    case "speech_started": log("speech started"); status("You are speaking…", "speaking"); break;
    case "speech_stopped": log("speech stopped"); status("Thinking…", "responding"); break;
    case "response_started": {
      const t = { id: ev.turn_id, voice: ev.voice, chunks: 0 };
      state.turns.set(ev.turn_id, t); state.currentTurn = ev.turn_id; addTurnRow(t);
      log(`reply started (turn ${ev.turn_id}, voice ${ev.voice})`);
      status(`Replying in ${ev.voice}'s voice…`, "responding");
      break;
    }
    case "response_done": {
      const row = $("turn-" + ev.turn_id); const l = ev.latency;
      if (row) {
        row.querySelector(".ms").textContent = ev.audio_ms;
        row.querySelector(".rl").textContent = l.response_latency_ms.toFixed(0);
        row.querySelector(".v2v").textContent = l.voice_to_voice_ms.toFixed(0);
        row.querySelector(".ff").textContent = l.first_frame_ms.toFixed(0);
        row.querySelector(".fd").textContent = l.first_decode_ms.toFixed(0);
      }
      $("latency").textContent = l.response_latency_ms.toFixed(0) + " ms";
      $("v2v").textContent = l.voice_to_voice_ms.toFixed(0) + " ms";
      $("turns").textContent = ev.turns_in_context;
      log(`reply done: ${ev.audio_ms} ms of audio, response latency ${l.response_latency_ms.toFixed(0)} ms`);
      status("Listening… speak Telugu.", "listening");
      break;
    }
    case "response_interrupted": {
      stopPlayback();
      const row = $("turn-" + ev.turn_id);
      if (row) { row.querySelector(".flag").textContent = "interrupted"; row.querySelector(".ms").textContent = ev.played_ms; }
      log(`reply interrupted after ${ev.played_ms} ms`, "interrupted");
      break;
    }
    case "error":
      log(`${ev.fatal ? "error" : "warning"}: ${ev.message}`, "error");
      if (ev.fatal) { status(ev.message, "error"); teardown(false); }
      break;
    case "call_ended": log("call ended"); teardown(false); break;
  }
}

async function start() {
  $("start").disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  } catch (e) {
    status("Microphone access was denied. Allow the microphone for this page and try again.", "error");
    log("microphone denied: " + e.message, "error");
    $("start").disabled = false;
    return;
  }
  state.ctx = new AudioContext();
  await state.ctx.audioWorklet.addModule("/capture-worklet.js");
  const srcNode = state.ctx.createMediaStreamSource(state.stream);
  state.node = new AudioWorkletNode(state.ctx, "capture-processor");
  srcNode.connect(state.node);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "start", voice: $("voice").value, session_id: state.sessionId }));
    state.node.port.onmessage = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(m.data); };
    $("stop").disabled = false;
    state.talking = true;
  };
  ws.onmessage = (m) => { if (typeof m.data === "string") onEvent(JSON.parse(m.data)); else playChunk(m.data); };
  ws.onerror = () => { status("The voice service is down or unreachable. Start it with `telugu-s2s up`.", "error"); };
  ws.onclose = () => { if (state.talking) { log("connection closed"); teardown(false); } };
}

function teardown(sendEnd) {
  state.talking = false;
  if (state.ws) {
    if (sendEnd && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "end" }));
    if (!sendEnd) state.ws.close();
    state.ws = null;
  }
  if (state.node) { state.node.port.onmessage = null; state.node.disconnect(); state.node = null; }
  if (state.stream) { state.stream.getTracks().forEach((t) => t.stop()); state.stream = null; }
  $("start").disabled = false; $("stop").disabled = true;
}

$("start").onclick = start;
$("stop").onclick = () => { teardown(true); status("Stopped. Press Start talking to continue this conversation."); };
$("new").onclick = () => {
  teardown(true); stopPlayback();
  state.sessionId = ""; state.turns.clear();
  $("session").textContent = "—"; $("turns").textContent = "0"; $("latency").textContent = "—"; $("v2v").textContent = "—";
  $("turn-table").querySelector("tbody").innerHTML = "";
  log("new conversation"); status("New conversation. Press Start talking.");
};
$("voice").onchange = () => {
  const v = $("voice").value;
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "set_voice", voice: v }));
    log(`voice set to ${v} (from the next reply)`);
  }
};
window.teluguS2S = state;  // for debugging in the console
