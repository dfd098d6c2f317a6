// Recording player: a custom, keyboard-friendly UI around a native <audio>, plus a clickable transcript.
// Markup: templates/recordings/_player.html and _transcript.html. Docs: docs/player.md.
// Strict CSP (script-src 'self'; style-src 'self'): no inline script or style attributes, no eval;
// data arrives in data-* attributes, and only CSSOM/DOM properties are set from here.
(function () {
  "use strict";

  // htmx re-executes <script> tags in swapped content: install the global listeners once only.
  if (window.RecordingPlayer) return;

  const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  const SKIP_SECONDS = 10;
  const LOADING_DELAY_MS = 250; // local seeks finish sooner; showing "Loading…" for them would only flicker
  const USER_SCROLL_GRACE_MS = 4000; // leave the transcript alone this long after the user scrolled it
  const HAVE_FUTURE_DATA = 3;

  const players = []; // every initialised player with an <audio>, in document order of initialisation
  let lastUsed = null; // keyboard shortcuts drive the player the user touched last

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // m:ss, or h:mm:ss from an hour (or when withHours, so elapsed and total line up).
  function formatTime(seconds, withHours) {
    if (!Number.isFinite(seconds) || seconds < 0) return "-:--";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (h > 0 || withHours) return h + ":" + pad(m) + ":" + pad(s % 60);
    return m + ":" + pad(s % 60);
  }

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  // Short, human messages for statuses whose body we cannot show (HTML pages, empty bodies).
  const STATUS_MESSAGES = {
    401: "Your session has ended. Reload the page to sign in again.",
    403: "You do not have permission to play this recording.",
    404: "This recording was not found.",
    410: "This recording is no longer available at the provider.",
    416: "The recording could not be read from the start.",
    429: "The provider is busy. Try again in a moment.",
    502: "The provider did not answer. Try again.",
    503: "The portal is busy. Try again in a moment.",
    504: "The provider did not answer in time. Try again.",
  };

  class Player {
    constructor(root) {
      this.root = root;
      this.audio = root.querySelector("audio[data-player-audio]");
      this.audioUrl = root.dataset.audioUrl || (this.audio && this.audio.getAttribute("src")) || "";
      this.durationHint = parseFloat(root.dataset.duration);
      this.playButton = root.querySelector('[data-action="play"]');
      this.muteButton = root.querySelector('[data-action="mute"]');
      this.seek = root.querySelector("input[data-player-seek]");
      this.speed = root.querySelector("select[data-player-speed]");
      this.elapsed = root.querySelector("[data-player-elapsed]");
      this.total = root.querySelector("[data-player-duration]");
      this.status = root.querySelector("[data-player-status]");
      this.error = root.querySelector("[data-player-error]");
      this.scroller = root.querySelector("[data-transcript-scroll]");
      this.scrubbing = false; // true while the seek thumb is dragged: display follows, audio seeks on release
      this.loadingTimer = null;
      this.errorToken = 0; // drops answers of error probes that a retry has made stale
      this.resumeAt = null; // position to restore after a retry reloads the audio
      this.current = null; // the highlighted transcript segment
      this.lastUserScroll = 0;
      this.autoScrollUntil = 0;
      this.segments = this.readSegments();
    }

    start() {
      this.formatSegmentTimes();
      if (!this.audio) return; // not playable: the template shows a notice instead

      // The native controls are the no-JavaScript fallback; from here on ours take over.
      this.audio.controls = false;
      const controls = this.root.querySelector("[data-player-controls]");
      if (controls) controls.hidden = false;

      this.bindAudio();
      this.bindControls();
      this.bindTranscript();
      this.setRate(parseFloat(this.speed ? this.speed.value : "1") || 1);
      this.renderDuration();
      this.renderTime();
      this.renderPlayState();
      this.renderMute();
      // The audio may have failed before this deferred script ran.
      if (this.audio.error) this.handleError();
    }

    // ----- audio element -----

    bindAudio() {
      const a = this.audio;
      const on = (type, fn) => a.addEventListener(type, fn);
      on("loadedmetadata", () => {
        this.renderDuration();
        if (a.paused) this.setLoading(false); // preload="metadata" may stop here without "canplay"
        if (this.resumeAt !== null) {
          a.currentTime = Math.min(this.resumeAt, this.duration() || this.resumeAt);
          this.resumeAt = null;
        }
      });
      on("durationchange", () => this.renderDuration());
      on("timeupdate", () => {
        this.renderTime();
        this.updateCurrentSegment();
      });
      on("play", () => {
        lastUsed = this;
        this.pauseOthers();
        this.renderPlayState();
        if (a.readyState < HAVE_FUTURE_DATA) this.setLoading(true);
      });
      on("pause", () => {
        this.renderPlayState();
        this.setLoading(false);
      });
      on("ended", () => this.renderPlayState());
      on("waiting", () => this.setLoading(true));
      // "stalled" also fires once the browser simply stops fetching ahead; only a starved player is loading.
      on("stalled", () => {
        if (a.readyState < HAVE_FUTURE_DATA && !a.paused) this.setLoading(true);
      });
      on("seeking", () => this.setLoading(true));
      on("seeked", () => {
        this.setLoading(false);
        this.renderTime();
        this.updateCurrentSegment();
      });
      on("playing", () => this.setLoading(false));
      on("canplay", () => {
        if (!a.seeking) this.setLoading(false);
      });
      on("ratechange", () => this.renderRate());
      on("volumechange", () => this.renderMute());
      on("error", () => this.handleError());
    }

    duration() {
      const d = this.audio ? this.audio.duration : NaN;
      if (Number.isFinite(d) && d > 0) return d;
      // Streams without a length report Infinity; the stored duration is the next best thing.
      return Number.isFinite(this.durationHint) && this.durationHint > 0 ? this.durationHint : NaN;
    }

    withHours() {
      return this.duration() >= 3600;
    }

    // ----- controls -----

    bindControls() {
      // Any touch of the player makes it the target of the keyboard shortcuts.
      const claim = () => {
        lastUsed = this;
      };
      this.root.addEventListener("pointerdown", claim);
      this.root.addEventListener("focusin", claim);

      this.root.addEventListener("click", (e) => {
        const button = e.target.closest("button[data-action]");
        if (!button || !this.root.contains(button)) return;
        const action = button.dataset.action;
        if (action === "play") this.toggle();
        else if (action === "back") this.skip(-SKIP_SECONDS);
        else if (action === "forward") this.skip(SKIP_SECONDS);
        else if (action === "mute") this.audio.muted = !this.audio.muted;
        else if (action === "retry") this.retry();
      });

      if (this.seek) {
        const s = this.seek;
        // While dragging, only the display follows; one seek on release saves a Range request per pixel.
        s.addEventListener("pointerdown", () => {
          this.scrubbing = true;
        });
        s.addEventListener("input", () => {
          const t = parseFloat(s.value);
          if (this.scrubbing) this.renderTime(t);
          else this.seekTo(t);
        });
        s.addEventListener("change", () => {
          this.scrubbing = false;
          this.seekTo(parseFloat(s.value));
        });
        // A pointer released outside the thumb may not fire "change".
        s.addEventListener("pointerup", () => {
          if (this.scrubbing) {
            this.scrubbing = false;
            this.seekTo(parseFloat(s.value));
          }
        });
      }

      if (this.speed) {
        this.speed.addEventListener("change", () => this.setRate(parseFloat(this.speed.value)));
      }
    }

    toggle() {
      if (this.audio.paused || this.audio.ended) this.play();
      else this.audio.pause();
    }

    play() {
      const p = this.audio.play();
      // Media failures arrive as "error" events; the promise only adds autoplay and abort noise.
      if (p && p.catch) p.catch(() => {});
    }

    seekTo(seconds) {
      if (!Number.isFinite(seconds)) return;
      const d = this.duration();
      const t = Math.max(0, Number.isFinite(d) ? Math.min(seconds, d) : seconds);
      this.audio.currentTime = t;
      this.renderTime(t); // show the target now rather than after the next timeupdate
      this.updateCurrentSegment(t);
    }

    skip(delta) {
      this.seekTo(this.audio.currentTime + delta);
    }

    jumpToFraction(fraction) {
      const d = this.duration();
      if (Number.isFinite(d)) this.seekTo(d * fraction);
    }

    setRate(rate) {
      if (!SPEEDS.includes(rate)) rate = 1;
      // defaultPlaybackRate survives load(), so a retry keeps the chosen speed.
      this.audio.defaultPlaybackRate = rate;
      this.audio.playbackRate = rate;
      this.renderRate();
    }

    // From a rate between two steps (set elsewhere), go to the neighbouring step in that direction.
    stepRate(direction) {
      const now = this.audio.playbackRate;
      const next = direction > 0
        ? SPEEDS.find((r) => r > now + 0.001)
        : [...SPEEDS].reverse().find((r) => r < now - 0.001);
      if (next !== undefined) this.setRate(next);
    }

    pauseOthers() {
      // Two calls talking over each other helps nobody.
      for (const other of players) {
        if (other !== this && other.audio && !other.audio.paused) other.audio.pause();
      }
    }

    // ----- rendering -----

    renderDuration() {
      const d = this.duration();
      if (this.total) this.total.textContent = formatTime(d, this.withHours());
      if (this.seek) {
        this.seek.max = Number.isFinite(d) ? String(d) : "0";
        this.seek.disabled = !Number.isFinite(d);
      }
      this.renderTime();
    }

    // `at` is a position the user is choosing (dragging, a key); without it, the audio's own position.
    renderTime(at) {
      if (this.scrubbing && at === undefined) return; // the dragged thumb wins over timeupdate
      const t = at === undefined ? this.audio.currentTime : at;
      if (this.elapsed) this.elapsed.textContent = formatTime(t, this.withHours());
      if (!this.seek) return;
      if (!this.scrubbing) this.seek.value = String(t);
      this.seek.setAttribute("aria-valuetext", formatTime(t) + " of " + formatTime(this.duration()));
    }

    renderPlayState() {
      const playing = !this.audio.paused && !this.audio.ended;
      this.root.dataset.state = playing ? "playing" : "paused";
      if (this.playButton) this.playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    }

    renderMute() {
      if (this.muteButton) this.muteButton.setAttribute("aria-pressed", this.audio.muted ? "true" : "false");
    }

    renderRate() {
      if (!this.speed) return;
      const value = String(this.audio.playbackRate);
      if ([...this.speed.options].some((o) => o.value === value)) this.speed.value = value;
    }

    setLoading(on) {
      clearTimeout(this.loadingTimer);
      this.loadingTimer = null;
      if (on) {
        this.loadingTimer = setTimeout(() => {
          this.root.setAttribute("aria-busy", "true");
          if (this.status) this.status.textContent = "Loading…";
        }, LOADING_DELAY_MS);
      } else {
        this.root.removeAttribute("aria-busy");
        if (this.status) this.status.textContent = "";
      }
    }

    // ----- errors -----

    // The media element only says "it failed"; ask the portal why with the smallest possible request.
    async handleError() {
      const mediaError = this.audio.error;
      if (!mediaError || mediaError.code === 1) return; // MEDIA_ERR_ABORTED: a reload we asked for
      this.setLoading(false);
      const token = ++this.errorToken;
      const message = await this.probe(mediaError);
      if (token === this.errorToken) this.showError(message);
    }

    async probe(mediaError) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 15000);
      try {
        const res = await fetch(this.audioUrl, {
          headers: { Range: "bytes=0-0" },
          credentials: "same-origin",
          cache: "no-store",
          signal: controller.signal,
        });
        const type = (res.headers.get("Content-Type") || "").toLowerCase();
        // An expired session redirects the probe to the login page.
        if (res.redirected && type.includes("text/html")) return STATUS_MESSAGES[401];
        if (res.ok) {
          controller.abort(); // never read the audio itself
          if (mediaError.code === 4 || mediaError.code === 3) {
            return "This browser cannot play this recording's format. Try again, or download it.";
          }
          return "The connection dropped while loading the recording. Try again.";
        }
        return (await this.serverMessage(res, type)) || STATUS_MESSAGES[res.status] ||
          "The recording could not be loaded (error " + res.status + "). Try again.";
      } catch (e) {
        return "The portal could not be reached. Check the connection and try again.";
      } finally {
        clearTimeout(timer);
      }
    }

    // The server answers errors with a short plain-text or JSON {"error": "..."} body; HTML pages are not shown.
    async serverMessage(res, type) {
      let body;
      try {
        body = await res.text();
      } catch (e) {
        return "";
      }
      let text = "";
      if (type.includes("json")) {
        try {
          const data = JSON.parse(body);
          text = typeof data === "string" ? data : data && (data.error || data.message || data.detail);
        } catch (e) {
          text = "";
        }
      } else if (type.startsWith("text/plain") || type === "") {
        text = body;
      }
      text = typeof text === "string" ? text.replace(/\s+/g, " ").trim() : "";
      return text.length > 300 ? text.slice(0, 297) + "…" : text;
    }

    showError(message) {
      if (!this.error) return;
      const text = document.createElement("p");
      text.className = "player-error-message";
      text.textContent = message; // textContent: the server's words are never parsed as HTML
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "player-retry";
      retry.dataset.action = "retry";
      retry.textContent = "Retry";
      this.error.replaceChildren(text, retry);
      this.root.dataset.error = "true";
    }

    clearError() {
      if (this.error) this.error.replaceChildren();
      delete this.root.dataset.error;
    }

    retry() {
      const hadFocus = this.error && this.error.contains(document.activeElement);
      this.errorToken++;
      const t = this.audio.currentTime;
      this.resumeAt = t > 0 ? t : null;
      this.clearError();
      this.audio.load(); // runs resource selection again: a fresh request to the audio route
      this.setLoading(true);
      // The Retry button is gone now; keep keyboard users inside the player.
      if (hadFocus && this.playButton) this.playButton.focus();
    }

    // ----- transcript -----

    readSegments() {
      return [...this.root.querySelectorAll("[data-segment]")]
        .map((el) => ({ el, start: parseFloat(el.dataset.start), end: parseFloat(el.dataset.end) }))
        .filter((s) => Number.isFinite(s.start))
        .sort((a, b) => a.start - b.start);
    }

    formatSegmentTimes() {
      for (const el of this.root.querySelectorAll("time[data-seconds]")) {
        const s = parseFloat(el.dataset.seconds);
        if (Number.isFinite(s)) el.textContent = formatTime(s, this.withHours());
      }
    }

    bindTranscript() {
      for (const seg of this.segments) {
        // Segments are <button>s, so Enter and Space arrive here as clicks too.
        seg.el.addEventListener("click", () => {
          this.seekTo(seg.start);
          this.setCurrent(seg, false);
          this.play();
        });
      }
      const sc = this.scroller;
      if (!sc) return;
      const userScrolled = () => {
        this.lastUserScroll = Date.now();
      };
      // Our own smooth scrolls also fire "scroll"; only those outside that window are the user's.
      sc.addEventListener("scroll", () => {
        if (Date.now() > this.autoScrollUntil) userScrolled();
      }, { passive: true });
      sc.addEventListener("wheel", userScrolled, { passive: true });
      sc.addEventListener("touchmove", userScrolled, { passive: true });
    }

    // The current segment is the last one that has started: gaps between turns keep the previous highlight.
    updateCurrentSegment(at) {
      if (!this.segments.length) return;
      const t = (at === undefined ? this.audio.currentTime : at) + 0.05; // float slack after seeking to a start
      let found = null;
      for (const seg of this.segments) {
        if (seg.start <= t) found = seg;
        else break;
      }
      if (found !== this.current) this.setCurrent(found, true);
    }

    setCurrent(seg, scroll) {
      if (this.current) {
        this.current.el.classList.remove("is-current");
        this.current.el.removeAttribute("aria-current");
      }
      this.current = seg;
      if (!seg) return;
      seg.el.classList.add("is-current");
      seg.el.setAttribute("aria-current", "true");
      if (scroll) this.scrollIntoPanel(seg.el);
    }

    // Scroll the panel only (scrollIntoView would move the whole page), and only if the segment is out of view.
    scrollIntoPanel(el) {
      const sc = this.scroller;
      if (!sc || Date.now() - this.lastUserScroll < USER_SCROLL_GRACE_MS) return;
      const box = sc.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      if (r.top >= box.top && r.bottom <= box.bottom) return;
      const top = sc.scrollTop + (r.top - box.top) - sc.clientHeight / 3;
      this.autoScrollUntil = Date.now() + 1000;
      sc.scrollTo({ top: Math.max(0, top), behavior: reducedMotion() ? "auto" : "smooth" });
    }
  }

  // ----- keyboard shortcuts (one listener for the page) -----

  function isTextEntry(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    return !["range", "checkbox", "radio", "button", "submit", "reset", "color", "file", "image"].includes(el.type);
  }

  // Elements where Space (or Enter) already means something: leave it to them.
  function ownsSpace(el) {
    return !!(el && el.closest && el.closest(
      "button, a[href], summary, input:not([type=range]), [role=button], [role=checkbox], [role=switch], " +
      "[role=radio], [role=menuitem], [role=option], [role=tab], [role=link]"
    ));
  }

  // Widgets that use the arrow keys themselves (except our own seek bars, handled below).
  function ownsArrows(el) {
    if (!el || !el.closest) return false;
    if (el.matches("input[data-player-seek]")) return false;
    return !!el.closest(
      "input, [role=slider], [role=listbox], [role=radiogroup], [role=tablist], [role=menu], [role=menubar], " +
      "[role=grid], [role=tree], [role=spinbutton]"
    );
  }

  function activePlayer() {
    for (let i = players.length - 1; i >= 0; i--) {
      if (!players[i].root.isConnected) players.splice(i, 1); // swapped out by htmx
    }
    if (lastUsed && lastUsed.root.isConnected) return lastUsed;
    // Default: the first player in document order (htmx may have added players above older ones).
    const first = document.querySelector("[data-player][data-player-ready] audio[data-player-audio]");
    return players.find((p) => p.audio === first) || players[0] || null;
  }

  function onKeyDown(e) {
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (isTextEntry(target)) return;
    const player = activePlayer();
    if (!player) return;

    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const onSeekBar = target && target.matches && target.matches("input[data-player-seek]");
    const arrowsFree = !ownsArrows(target);
    let act = null;

    if (key === " " || key === "k") {
      if (key === " " && ownsSpace(target)) return;
      act = () => player.toggle();
    } else if ((key === "ArrowLeft" && arrowsFree) || key === "j" || (key === "ArrowDown" && onSeekBar)) {
      act = () => player.skip(-SKIP_SECONDS);
    } else if ((key === "ArrowRight" && arrowsFree) || key === "l" || (key === "ArrowUp" && onSeekBar)) {
      act = () => player.skip(SKIP_SECONDS);
    } else if (key === "<" || key === "[" || (e.code === "Comma" && e.shiftKey)) {
      act = () => player.stepRate(-1);
    } else if (key === ">" || key === "]" || (e.code === "Period" && e.shiftKey)) {
      act = () => player.stepRate(1);
    } else if (/^[0-9]$/.test(key)) {
      act = () => player.jumpToFraction(Number(key) / 10);
    } else if (key === "m") {
      act = () => {
        player.audio.muted = !player.audio.muted;
      };
    }
    if (!act) return;
    e.preventDefault(); // no page scroll on Space/arrows, no native 0.1 s step on the seek bar
    // Holding a toggle key down would flap play/pause or mute.
    if (e.repeat && (key === " " || key === "k" || key === "m")) return;
    lastUsed = player;
    act();
  }

  // ----- initialisation (page load and every htmx swap; idempotent) -----

  function init(scope) {
    const rootScope = scope && scope.querySelectorAll ? scope : document;
    const found = [...rootScope.querySelectorAll("[data-player]")];
    if (rootScope.matches && rootScope.matches("[data-player]")) found.unshift(rootScope);
    for (const root of found) {
      if (root.hasAttribute("data-player-ready")) continue;
      root.setAttribute("data-player-ready", "");
      const player = new Player(root);
      player.start();
      if (player.audio) players.push(player);
    }
  }

  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("htmx:load", (e) => init((e.detail && e.detail.elt) || e.target));
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => init(document));
  } else {
    init(document);
  }

  // A small handle for tests and the browser console.
  window.RecordingPlayer = { init, formatTime };
})();
