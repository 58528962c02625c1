// Light and dark themes: the system's choice until the person picks one, then theirs.

export type Theme = "light" | "dark";
const STORAGE = "spendgate.theme";

export function storedTheme(): Theme | null {
  try {
    const value = window.localStorage.getItem(STORAGE);
    return value === "light" || value === "dark" ? value : null;
  } catch {
    return null;
  }
}

export function systemTheme(): Theme {
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme(theme: Theme | null): void {
  const root = document.documentElement;
  if (theme) root.dataset.theme = theme;
  else delete root.dataset.theme;
  try {
    if (theme) window.localStorage.setItem(STORAGE, theme);
    else window.localStorage.removeItem(STORAGE);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

export function currentTheme(): Theme {
  const set = document.documentElement.dataset.theme;
  return set === "light" || set === "dark" ? set : systemTheme();
}
