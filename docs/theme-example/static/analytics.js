// Google Analytics (gtag.js), with the measurement id the page gives (theme.google_analytics):
// a file of its own, since the pages' Content-Security-Policy runs no inline script.
window.dataLayer = window.dataLayer || [];
function gtag() { window.dataLayer.push(arguments); }
gtag("js", new Date());
gtag("config", document.currentScript.dataset.id);
