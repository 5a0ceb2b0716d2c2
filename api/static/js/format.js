// Number, time and size formatting shared by the pages.

export const STATES = [
  "queued", "running", "paused", "awaiting_decision", "interrupted", "succeeded", "failed", "cancelled",
];
export const ACTIVE_STATES = ["queued", "running", "paused", "awaiting_decision", "interrupted"];
export const FINAL_STATES = ["succeeded", "failed", "cancelled"];

export function stateLabel(state) {
  return String(state || "").replace(/_/g, " ");
}

/** Like Python's "%g": 5e-06, 0.0001, 0.812. */
export function g(value, digits = 4) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  const x = Number(value);
  if (x === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= digits + 2) {
    const [mantissa, power] = x.toExponential(digits - 1).split("e");
    const m = mantissa.includes(".") ? mantissa.replace(/0+$/, "").replace(/\.$/, "") : mantissa;
    const p = Number(power);
    return `${m}e${p < 0 ? "-" : "+"}${String(Math.abs(p)).padStart(2, "0")}`;
  }
  return String(Number(x.toPrecision(digits)));
}

export function f1(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(3);
}

export function percent(fraction) {
  return `${Math.round(Number(fraction) * 100)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function age(iso, now = Date.now()) {
  if (!iso) return "–";
  return duration((now - Date.parse(iso)) / 1000);
}

export function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}
