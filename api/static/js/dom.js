// DOM building that cannot inject markup: every string becomes a text node or an attribute value.
// Event-handler attributes and inline styles are refused, and links must stay on this server.

const SVG_NS = "http://www.w3.org/2000/svg";

function checkAttr(name, value) {
  if (/^on/i.test(name) || name.toLowerCase() === "style") {
    throw new Error(`refused attribute ${name}`);
  }
  if ((name === "href" || name === "src") && !/^(\/(?![/\\])|#|\?)/.test(String(value))) {
    throw new Error(`refused URL ${value}`);
  }
}

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else {
      checkAttr(key, value);
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: strings and numbers become text nodes; null/undefined/false are skipped. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("a", {href: "/x", class: "c"}, "text", child) */
export function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** An SVG element: attributes are presentation attributes, never styles or handlers. */
export function s(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  return append(clear(el), children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Show a short message in the page's toast area. */
export function toast(message, kind = "info") {
  const box = $("#toast");
  if (!box) return;
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

/** Mark the header's live dot: "on" (streaming/polling), "off" (stopped), "error" (retrying). */
export function liveIndicator(state, title) {
  const dot = $("#live");
  if (!dot) return;
  dot.dataset.state = state;
  dot.title = title || state;
}
