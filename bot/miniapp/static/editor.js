// The editor's page: the sender's photo with the faces found outlined and numbered (covered ones filled), a tap on a
// face shows or covers it, a drag on the picture marks an area to cover (a face the detector missed), an area can be
// moved, resized from its corners and deleted, every change can be undone, and the picture zooms with two fingers, the
// buttons or the wheel. Apply sends the choice to the bot, which paints the picture in the chat; this page never
// paints it. Every call carries Telegram's init data, by which the bot knows who is asking.
"use strict";

(() => {
  const tg = window.Telegram && window.Telegram.WebApp;
  const config = JSON.parse(document.getElementById("config").textContent);
  const user = tg && tg.initDataUnsafe && tg.initDataUnsafe.user;
  const language = user && String(user.language_code || "").toLowerCase().startsWith("ru") ? "ru" : "en";
  const texts = config.texts[language];
  const $ = (id) => document.getElementById(id);
  const stage = $("stage"), view = $("view"), photo = $("photo"), marks = $("marks");
  const SVG = "http://www.w3.org/2000/svg";
  // In screen pixels: how far a finger may wander before a tap becomes a drag, how near a corner grabs it, the size
  // of the corner handles and number badges, and the slack around a face that still counts as tapping it.
  const TAP_SLOP = 8, HANDLE_REACH = 22, HANDLE_SIZE = 14, BADGE_RADIUS = 11, FACE_SLACK = 6;
  // An area smaller than this (picture pixels) is a slip of the finger; zoom goes from the whole picture to 8 times.
  const MIN_SIDE = 4, MAX_ZOOM = 8, ZOOM_STEP = 1.5;

  const state = { faces: [], shown: new Set(), regions: [], selected: -1, shape: "ellipse" };
  const history = [];
  const camera = { scale: 1, x: 0, y: 0, fit: 1 };
  const pointers = new Map();
  let width = 0, height = 0, gesture = null, busy = false;

  class Refusal extends Error {}

  const format = (text, values) => text.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

  function say(text, isError = false) {
    $("message").textContent = text || "";
    $("message").classList.toggle("error", isError);
  }

  function node(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  // -- talking to the bot ------------------------------------------------------------------------------------------

  async function call(path, options = {}) {
    let response;
    try {
      const headers = { ...options.headers, Authorization: "tma " + tg.initData };
      response = await fetch(path + location.search, { ...options, headers, cache: "no-store" });
    } catch (error) {
      throw new Refusal(texts.offline);
    }
    if (!response.ok) {
      let text = texts.offline;
      try {
        text = (await response.json()).error || text;
      } catch (error) { /* not the bot's answer: a proxy's page */ }
      throw new Refusal(text);
    }
    return response;
  }

  function showPicture(blob) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(blob);
      photo.onload = () => { URL.revokeObjectURL(url); resolve(); };
      photo.onerror = () => { URL.revokeObjectURL(url); reject(new Refusal(texts.unreadable)); };
      photo.src = url;
    });
  }

  async function start() {
    document.documentElement.lang = language;
    document.title = texts.title;
    for (const button of document.querySelectorAll("[data-label]")) {
      button.title = texts[button.dataset.label];
      button.setAttribute("aria-label", texts[button.dataset.label]);
    }
    $("hint").textContent = texts.hint;
    $("apply").textContent = texts.apply;
    if (!tg || !tg.initData) {
      say(texts.outside, true);
      return;
    }
    tg.ready();
    if (tg.expand) tg.expand();
    if (tg.disableVerticalSwipes) tg.disableVerticalSwipes();
    say(texts.loading);
    try {
      const [result, original] = await Promise.all([call("api/result"), call("api/original")]);
      const data = await result.json();
      state.faces = data.faces;
      state.shown = new Set(data.shown);
      state.regions = data.regions;
      await showPicture(await original.blob());
    } catch (error) {
      say(error instanceof Refusal ? error.message : texts.offline, true);
      return;
    }
    width = photo.naturalWidth;
    height = photo.naturalHeight;
    for (const element of [photo, marks]) {
      element.setAttribute("width", width);
      element.setAttribute("height", height);
    }
    marks.setAttribute("viewBox", `0 0 ${width} ${height}`);
    view.hidden = false;
    say("");
    fit();
  }

  async function apply() {
    busy = true;
    $("apply").textContent = texts.applying;
    refresh();
    say("");
    const regions = state.regions.map(({ x, y, w, h, shape }) => ({ x, y, w, h, shape }));
    try {
      await call("api/apply", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ shown: [...state.shown].sort((a, b) => a - b), regions }),
      });
      if (tg.disableClosingConfirmation) tg.disableClosingConfirmation();
      tg.close();
    } catch (error) {
      say(error instanceof Refusal ? error.message : texts.offline, true);
    }
    busy = false;
    $("apply").textContent = texts.apply;
    refresh();
  }

  // -- the view: whole picture, zoomed, panned ---------------------------------------------------------------------

  // The scale that shows the whole picture; a stage not laid out yet (Telegram still opening) counts as 1 px wide.
  function fitScale() {
    const box = stage.getBoundingClientRect();
    return Math.min(Math.max(1, box.width) / width, Math.max(1, box.height) / height);
  }

  function fit() {
    camera.fit = camera.scale = fitScale();
    place();
  }

  function place() {
    const box = stage.getBoundingClientRect();
    const shownWidth = width * camera.scale, shownHeight = height * camera.scale;
    camera.x = shownWidth <= box.width ? (box.width - shownWidth) / 2 : clamp(camera.x, box.width - shownWidth, 0);
    camera.y = shownHeight <= box.height ? (box.height - shownHeight) / 2 : clamp(camera.y, box.height - shownHeight, 0);
    view.style.transform = `translate(${camera.x}px, ${camera.y}px) scale(${camera.scale})`;
    draw();
  }

  // Zoom by `factor`, keeping the stage point (x, y) where it is.
  function zoom(factor, x, y) {
    const scale = clamp(camera.scale * factor, camera.fit, camera.fit * MAX_ZOOM);
    camera.x = x - (x - camera.x) * (scale / camera.scale);
    camera.y = y - (y - camera.y) * (scale / camera.scale);
    camera.scale = scale;
    place();
  }

  function zoomAtCentre(factor) {
    const box = stage.getBoundingClientRect();
    zoom(factor, box.width / 2, box.height / 2);
  }

  function onStage(event) {
    const box = stage.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  function inPicture(event) {
    const point = onStage(event);
    return { x: (point.x - camera.x) / camera.scale, y: (point.y - camera.y) / camera.scale };
  }

  // -- what is drawn over the picture ------------------------------------------------------------------------------

  function corners(region) {
    const { x, y, w, h } = region;
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]];
  }

  function draw() {
    const unit = 1 / camera.scale;
    marks.replaceChildren();
    state.faces.forEach(([x, y, w, h], index) => {
      const number = index + 1;
      const face = node("g", { class: `face ${state.shown.has(number) ? "shown" : "covered"}`, "data-number": number });
      const badge = node("g", { class: "badge" });
      badge.append(
        node("circle", { cx: x, cy: y, r: BADGE_RADIUS * unit }),
        node("text", { x, y, "font-size": 13 * unit }, String(number)),
      );
      face.append(node("rect", { x, y, width: w, height: h }), badge);
      marks.append(face);
    });
    state.regions.forEach((region, index) => {
      const selected = index === state.selected;
      const group = node("g", { class: selected ? "region selected" : "region", "data-index": index });
      const { x, y, w, h } = region;
      group.append(
        region.shape === "box"
          ? node("rect", { class: "shape", x, y, width: w, height: h })
          : node("ellipse", { class: "shape", cx: x + w / 2, cy: y + h / 2, rx: w / 2, ry: h / 2 }),
      );
      if (selected) {
        const side = HANDLE_SIZE * unit;
        for (const [cx, cy] of corners(region)) {
          group.append(node("rect", { class: "handle", x: cx - side / 2, y: cy - side / 2, width: side, height: side }));
        }
      }
      marks.append(group);
    });
    refresh();
  }

  function refresh() {
    const covered = state.faces.length - state.shown.size;
    $("status").textContent = width
      ? format(texts.status, { covered, count: state.faces.length, regions: state.regions.length })
      : "";
    $("undo").disabled = busy || !history.length;
    $("delete").disabled = busy || state.selected < 0;
    $("apply").disabled = busy || !width;
    $("box").setAttribute("aria-pressed", String(state.shape === "box"));
    $("ellipse").setAttribute("aria-pressed", String(state.shape === "ellipse"));
  }

  // -- finding what is under a finger ------------------------------------------------------------------------------

  function regionAt(point) {
    for (let index = state.regions.length - 1; index >= 0; index--) {
      const { x, y, w, h, shape } = state.regions[index];
      const inBox = point.x >= x && point.x <= x + w && point.y >= y && point.y <= y + h;
      const dx = (point.x - x - w / 2) / (w / 2), dy = (point.y - y - h / 2) / (h / 2);
      if (shape === "box" ? inBox : dx * dx + dy * dy <= 1) return index;
    }
    return -1;
  }

  function faceAt(point) {
    const slack = FACE_SLACK / camera.scale;
    let found = -1, smallest = Infinity;
    state.faces.forEach(([x, y, w, h], index) => {
      const near = point.x >= x - slack && point.x <= x + w + slack && point.y >= y - slack && point.y <= y + h + slack;
      if (near && w * h < smallest) [found, smallest] = [index, w * h];
    });
    return found;
  }

  function cornerAt(point) {
    if (state.selected < 0) return -1;
    const reach = HANDLE_REACH / camera.scale;
    return corners(state.regions[state.selected]).findIndex(([x, y]) => Math.hypot(point.x - x, point.y - y) <= reach);
  }

  // -- changes and their undoing -----------------------------------------------------------------------------------

  function snapshot() {
    return JSON.stringify({ shown: [...state.shown].sort((a, b) => a - b), regions: state.regions });
  }

  function restore(saved) {
    const { shown, regions } = JSON.parse(saved);
    state.shown = new Set(shown);
    state.regions = regions;
    state.selected = -1;
  }

  function commit(before) {
    if (snapshot() === before) return;
    history.push(before);
    if (tg.enableClosingConfirmation) tg.enableClosingConfirmation();
  }

  function change(edit) {
    const before = snapshot();
    edit();
    commit(before);
    draw();
  }

  function undo() {
    if (history.length) restore(history.pop());
    draw();
  }

  function deleteSelected() {
    if (state.selected < 0) return;
    change(() => {
      state.regions.splice(state.selected, 1);
      state.selected = -1;
    });
  }

  function chooseShape(shape) {
    state.shape = shape;
    if (state.selected >= 0) change(() => { state.regions[state.selected].shape = shape; });
    draw();
  }

  // -- gestures ----------------------------------------------------------------------------------------------------

  // The rectangle between two points of the picture, held inside it.
  function between(a, b) {
    const x1 = Math.round(clamp(Math.min(a.x, b.x), 0, width)), x2 = Math.round(clamp(Math.max(a.x, b.x), 0, width));
    const y1 = Math.round(clamp(Math.min(a.y, b.y), 0, height)), y2 = Math.round(clamp(Math.max(a.y, b.y), 0, height));
    return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
  }

  function drawing(start) {
    if (state.regions.length >= config.maxRegions) {
      say(format(texts.too_many, { max: config.maxRegions }), true);
      return null;
    }
    const region = { x: 0, y: 0, w: 0, h: 0, shape: state.shape };
    state.regions.push(region);
    state.selected = state.regions.length - 1;
    return {
      move: (point) => Object.assign(region, between(start, point)),
      end: () => {
        if (region.w < MIN_SIDE || region.h < MIN_SIDE) {
          state.regions.pop();
          state.selected = -1;
        }
      },
    };
  }

  function moving(index, start) {
    const region = state.regions[index], from = { ...region };
    state.selected = index;
    return {
      move: (point) => {
        region.x = Math.round(clamp(from.x + point.x - start.x, 0, width - from.w));
        region.y = Math.round(clamp(from.y + point.y - start.y, 0, height - from.h));
      },
      end: () => {},
    };
  }

  function resizing(index, corner) {
    const region = state.regions[index];
    const [anchorX, anchorY] = corners(region)[(corner + 2) % 4];
    return {
      move: (point) => {
        const next = between({ x: anchorX, y: anchorY }, point);
        if (next.w >= MIN_SIDE && next.h >= MIN_SIDE) Object.assign(region, next);
      },
      end: () => {},
    };
  }

  function tap(point, region) {
    if (region >= 0) {
      state.selected = state.selected === region ? -1 : region;
      return;
    }
    state.selected = -1;
    const face = faceAt(point);
    if (face < 0) return;
    const number = face + 1;
    if (!state.shown.delete(number)) state.shown.add(number);
    if (tg.HapticFeedback) tg.HapticFeedback.selectionChanged();
  }

  // One finger: a tap, or a drag that draws, moves or resizes an area.
  function press(event) {
    const start = inPicture(event), origin = onStage(event), before = snapshot();
    const corner = cornerAt(start), region = regionAt(start);
    let action = corner >= 0 ? resizing(state.selected, corner) : null;
    return {
      move(event) {
        if (!action) {
          const point = onStage(event);
          if (Math.hypot(point.x - origin.x, point.y - origin.y) < TAP_SLOP) return;
          action = region >= 0 ? moving(region, start) : drawing(start);
          if (!action) return;
        }
        action.move(inPicture(event));
        draw();
      },
      end() {
        if (action) action.end();
        else tap(start, region);
        commit(before);
        draw();
      },
      cancel() {
        restore(before);
        draw();
      },
    };
  }

  // Two fingers: zoom by their spread and pan by their middle.
  function pinch() {
    const spread = () => {
      const [a, b] = [...pointers.values()];
      return { distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    };
    let last = spread();
    return {
      move() {
        const now = spread(), box = stage.getBoundingClientRect();
        camera.x += now.x - last.x;
        camera.y += now.y - last.y;
        zoom(last.distance ? now.distance / last.distance : 1, now.x - box.left, now.y - box.top);
        last = now;
      },
      end() {},
      cancel() {},
    };
  }

  stage.addEventListener("pointerdown", (event) => {
    if (!width || busy) return;
    stage.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pointers.size === 1) {
      say("");
      gesture = press(event);
    } else if (pointers.size === 2) {
      if (gesture) gesture.cancel();
      gesture = pinch();
    }
  });
  stage.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId)) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (gesture) gesture.move(event);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    stage.addEventListener(type, (event) => {
      if (!pointers.delete(event.pointerId) || !gesture) return;
      if (type === "pointerup") gesture.end();
      else gesture.cancel();
      gesture = null;
    });
  }
  stage.addEventListener("wheel", (event) => {
    if (!width) return;
    event.preventDefault();
    if (event.ctrlKey) {
      const point = onStage(event);
      zoom(Math.exp(-event.deltaY * 0.01), point.x, point.y);
    } else {
      camera.x -= event.deltaX;
      camera.y -= event.deltaY;
      place();
    }
  }, { passive: false });
  stage.addEventListener("contextmenu", (event) => event.preventDefault());
  window.addEventListener("resize", () => {
    if (!width) return;
    const zoomed = camera.scale / camera.fit;
    camera.fit = fitScale();
    camera.scale = camera.fit * zoomed;
    place();
  });
  window.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") undo();
    else if (event.key === "Delete" || event.key === "Backspace") deleteSelected();
    else if (event.key === "Escape") { state.selected = -1; draw(); }
    else return;
    event.preventDefault();
  });

  $("undo").addEventListener("click", undo);
  $("delete").addEventListener("click", deleteSelected);
  $("box").addEventListener("click", () => chooseShape("box"));
  $("ellipse").addEventListener("click", () => chooseShape("ellipse"));
  $("zoom-in").addEventListener("click", () => width && zoomAtCentre(ZOOM_STEP));
  $("zoom-out").addEventListener("click", () => width && zoomAtCentre(1 / ZOOM_STEP));
  $("fit").addEventListener("click", () => width && fit());
  $("apply").addEventListener("click", apply);

  start();
})();
