// redovault DR console: reloads <main> every few seconds (the page works without this
// script: it then refreshes itself with <meta refresh>). Read-only: only GET requests.
(function () {
  'use strict';
  var EVERY_MS = 3000;
  var live = document.getElementById('live');
  function say(text, stale) {
    if (!live) { return; }
    live.textContent = text;
    live.className = stale ? 'note stale' : 'note';
  }
  function refresh() {
    fetch(window.location.pathname, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.querySelector('main');
        var old = document.querySelector('main');
        if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
        var note = doc.getElementById('live');
        say(note ? note.textContent : 'updated', false);
      })
      .catch(function (e) {
        say('console unreachable (' + e.message + '): the page below is stale', true);
      })
      .then(function () { window.setTimeout(refresh, EVERY_MS); });
  }
  window.setTimeout(refresh, EVERY_MS);
}());
