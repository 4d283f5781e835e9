// The console page: noVNC's RFB client (pinned from npm, served under /static/vendor/) on a websocket
// we open ourselves, so the proxy's reason for closing it (expired link, VM stopped, …) reaches the
// page. The proxy logs in to the VM's VNC server; this page never sees a VNC password.
import RFB from "../vendor/@novnc/novnc/core/rfb.js";
import KeyTable from "../vendor/@novnc/novnc/core/input/keysym.js";
import keysyms from "../vendor/@novnc/novnc/core/input/keysymdef.js";

const screen = document.getElementById("console-screen");
const statusText = document.getElementById("console-status");
const buttons = {
  cad: document.getElementById("console-cad"),
  paste: document.getElementById("console-paste"),
  fullscreen: document.getElementById("console-fullscreen"),
  reconnect: document.getElementById("console-reconnect"),
};
const pasteDialog = document.getElementById("console-paste-dialog");
const pasteText = document.getElementById("console-paste-text");
const link = screen.dataset.link === "true";

let rfb = null;
let closeReason = "";
let linkToken = null;

// An API link (createConsoleEndpoint) carries its token in the query string: take it and drop it
// from the address bar and the history at once.
if (link) {
  linkToken = new URLSearchParams(window.location.search).get("token");
  window.history.replaceState(null, "", window.location.pathname);
}

function setStatus(state, text) {
  statusText.dataset.state = state;
  statusText.textContent = text;
  const connected = state === "connected";
  buttons.cad.disabled = !connected;
  buttons.paste.disabled = !connected;
  buttons.reconnect.hidden = connected || state === "connecting" || (link && !screen.dataset.tokenUrl);
  document.body.dataset.console = state;
}

async function fetchToken() {
  if (link) {
    const token = linkToken;
    linkToken = null; // one connection per link
    if (!token) {
      throw new Error("This console link has been used. Ask for a new console link.");
    }
    return { token, url: screen.dataset.websocketUrl };
  }
  const response = await fetch(screen.dataset.tokenUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": screen.dataset.csrf, Accept: "application/json" },
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch (err) {
    answer = {};
  }
  if (!response.ok) {
    throw new Error(answer.error || `The portal refused the console (HTTP ${response.status}).`);
  }
  return answer;
}

async function connect() {
  if (rfb) {
    rfb.disconnect();
    rfb = null;
  }
  closeReason = "";
  setStatus("connecting", "Connecting…");
  let endpoint;
  try {
    endpoint = await fetchToken();
  } catch (err) {
    setStatus("failed", err.message);
    return;
  }
  const socket = new WebSocket(`${endpoint.url}?token=${encodeURIComponent(endpoint.token)}`, ["binary"]);
  socket.binaryType = "arraybuffer";
  socket.addEventListener("close", (event) => {
    closeReason = event.reason || (event.code === 1006 ? "The console proxy cannot be reached." : "");
  });
  rfb = new RFB(screen, socket, {});
  rfb.scaleViewport = true;
  rfb.background = "#000";
  rfb.addEventListener("connect", () => {
    setStatus("connected", "Connected");
    rfb.focus();
  });
  rfb.addEventListener("disconnect", (event) => {
    rfb = null;
    // the websocket's own close event (with the proxy's reason) fires around the same time
    window.setTimeout(() => {
      const clean = event.detail && event.detail.clean;
      const text = closeReason || (clean ? "Disconnected." : "The connection to the console failed.");
      setStatus(clean && !closeReason ? "disconnected" : "failed", text);
    }, 50);
  });
}

function typeText(text) {
  if (!rfb) {
    return;
  }
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    if (ch === "\n") {
      rfb.sendKey(KeyTable.XK_Return, "Enter");
    } else if (ch === "\t") {
      rfb.sendKey(KeyTable.XK_Tab, "Tab");
    } else {
      rfb.sendKey(keysyms.lookup(ch.codePointAt(0)), null);
    }
  }
}

buttons.cad.addEventListener("click", () => rfb && rfb.sendCtrlAltDel());
buttons.reconnect.addEventListener("click", () => connect());
buttons.fullscreen.addEventListener("click", () => {
  if (document.fullscreenElement) {
    document.exitFullscreen();
  } else if (screen.requestFullscreen) {
    screen.requestFullscreen().catch(() => setStatus(statusText.dataset.state, "Full screen is not allowed here."));
  }
});
buttons.paste.addEventListener("click", () => {
  pasteText.value = "";
  pasteDialog.showModal();
  pasteText.focus();
});
pasteDialog.addEventListener("close", () => {
  if (pasteDialog.returnValue === "type") {
    typeText(pasteText.value);
  }
  if (rfb) {
    rfb.focus();
  }
});

// The test suite (and curious users) can see the state in the DOM: body[data-console].
connect();
