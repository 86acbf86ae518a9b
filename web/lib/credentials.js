// The console's credential: an API key or a token, kept for this tab (sessionStorage) or, when
// asked, on this device (localStorage). It is sent as `Authorization: Bearer` on every request,
// event streams included, and never put in a URL.

const KEY = "refinery.credential";

export function credential() {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

export function setCredential(value, remember) {
  clearCredential();
  (remember ? localStorage : sessionStorage).setItem(KEY, value);
}

export function clearCredential() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

/** Headers that authenticate a request (none when no credential is stored). */
export function authHeaders() {
  const value = credential();
  return value ? { Authorization: `Bearer ${value}` } : {};
}
