/*
 * Shared by the era demo pages: a visible log of what the page's client did and received, also kept in window.era
 * (log, ready) so a test can read it, and the page's options from its query string (room, transports).
 */
(function (root) {
  'use strict';
  var params = {};
  var q = root.location.search.replace(/^\?/, '').split('&');
  for (var i = 0; i < q.length; i++) {
    if (!q[i]) continue;
    var kv = q[i].split('=');
    params[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join('=') || '');
  }
  var era = (root.era = { log: [], ready: false, room: params.room || 'defaultRoom', params: params });
  era.record = function (kind, data) {
    era.log.push({ kind: kind, data: data });
    var pre = document.getElementById('log');
    if (pre) pre.appendChild(document.createTextNode(kind + ' ' + (typeof data === 'string' ? data : JSON.stringify(data)) + '\n'));
  };
  era.setReady = function () {
    era.ready = true;
    var el = document.getElementById('state');
    if (el) el.textContent = 'ready in ' + era.room;
  };
})(window);
