/* The chat demo: uses only the rendered ActionheroWebsocketClient. ES5, like the client.
 * ?min=1 loads the minified client; ?room=<name> starts in another room. */
(function () {
    'use strict';

    var ROOMS = ['defaultRoom', 'otherRoom'];
    var query = window.location.search;
    var current = (/[?&]room=([^&]+)/.exec(query) || [])[1] || 'defaultRoom';
    var client;
    var membersTimer = null;

    function $(id) {
        return document.getElementById(id);
    }

    function text(el, value) {
        el.textContent = value === null || value === undefined ? '-' : String(value);
    }

    function short(id) {
        return id && id.length > 8 ? id.substring(0, 8) : id;
    }

    function time(ms) {
        var d = new Date(ms || Date.now());
        function two(n) {
            return n < 10 ? '0' + n : '' + n;
        }
        return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
    }

    function addLine(kind, who, body, when) {
        var li = document.createElement('li');
        li.className = 'msg ' + kind;
        var t = document.createElement('span');
        t.className = 'time';
        text(t, time(when));
        li.appendChild(t);
        if (who) {
            var w = document.createElement('span');
            w.className = 'who';
            text(w, who);
            li.appendChild(w);
        }
        var b = document.createElement('span');
        b.className = 'body';
        text(b, body);
        li.appendChild(b);
        var list = $('messages');
        list.appendChild(li);
        list.scrollTop = list.scrollHeight;
    }

    function showState() {
        var el = $('state');
        el.className = 'pill state-' + client.state;
        text(el, client.state);
        text($('transport'), client.transport || 'none');
        text($('me-id'), client.id);
        text($('me-fingerprint'), client.fingerprint);
        renderRooms();
    }

    function renderRooms() {
        var ul = $('rooms');
        ul.innerHTML = '';
        for (var i = 0; i < ROOMS.length; i++) {
            var room = ROOMS[i];
            var joined = false;
            for (var j = 0; j < client.rooms.length; j++) {
                if (client.rooms[j] === room) {
                    joined = true;
                }
            }
            var li = document.createElement('li');
            li.className = 'room' + (room === current ? ' current' : '') + (joined ? ' joined' : '');
            li.setAttribute('data-room', room);
            var name = document.createElement('a');
            name.href = '#';
            text(name, room);
            name.onclick = select(room);
            li.appendChild(name);
            var btn = document.createElement('button');
            btn.type = 'button';
            text(btn, joined ? 'leave' : 'join');
            btn.onclick = joined ? leave(room) : join(room);
            li.appendChild(btn);
            ul.appendChild(li);
        }
    }

    function select(room) {
        return function () {
            current = room;
            text($('members-room'), room);
            renderRooms();
            refreshMembers();
            return false;
        };
    }

    function join(room) {
        return function () {
            client.roomAdd(room, function (reply) {
                if (reply.error) {
                    addLine('error', null, reply.error);
                } else {
                    addLine('info', null, 'joined ' + room);
                    current = room;
                    text($('members-room'), room);
                }
                showState();
                refreshMembers();
            });
        };
    }

    function leave(room) {
        return function () {
            client.roomLeave(room, function (reply) {
                addLine(reply.error ? 'error' : 'info', null, reply.error || 'left ' + room);
                showState();
                refreshMembers();
            });
        };
    }

    function refreshMembers() {
        var ul = $('members');
        if (client.state !== 'connected') {
            return;
        }
        client.roomView(current, function (reply) {
            ul.innerHTML = '';
            if (!reply.data || !reply.data.members) {
                return;
            }
            for (var id in reply.data.members) {
                if (Object.prototype.hasOwnProperty.call(reply.data.members, id)) {
                    var li = document.createElement('li');
                    li.className = 'member' + (id === client.id ? ' me' : '');
                    li.setAttribute('data-id', id);
                    li.title = id;
                    text(li, short(id) + (id === client.id ? ' (you)' : ''));
                    ul.appendChild(li);
                }
            }
        });
    }

    function start() {
        client = new window.ActionheroWebsocketClient();
        window.chatClient = client;
        client.on('welcome', function (m) {
            var w = $('welcome');
            text(w, m.welcome);
            w.hidden = false;
        });
        client.on('say', function (m) {
            addLine(m.from === client.id ? 'mine' : 'user', m.from === '0' ? 'server' : short(m.from), m.message, m.sentAt);
            if (m.room === current) {
                refreshMembers();
            }
        });
        client.on('api', function (m) {
            addLine('alert', 'server', m.message || JSON.stringify(m));
        });
        client.on('alert', function (m) {
            addLine('alert', 'alert', m.message || JSON.stringify(m));
        });
        client.on('transport', function (name) {
            if (name && client.state === 'connected') {
                addLine('info', null, 'transport: ' + name);
            }
            showState();
        });
        client.on('connected', function () {
            addLine('info', null, 'connected over ' + client.transport + ' as ' + client.id);
            showState();
            refreshMembers();
        });
        client.on('resumed', function (e) {
            addLine('info', null, 'resumed as ' + e.id + ': the same connection, nothing missed');
        });
        client.on('notResumed', function (e) {
            addLine('info', null, 'not resumed (' + e.reason + '): a new connection, rooms joined again');
        });
        client.on('disconnected', function (why) {
            addLine('info', null, 'disconnected (' + why + ')');
            showState();
        });
        client.on('reconnecting', function (r) {
            showState();
            addLine('info', null, 'reconnecting in ' + r.delay + ' ms (attempt ' + r.attempt + ')');
        });
        client.on('timeout', showState);
        client.on('error', function (e) {
            addLine('error', null, String(e && e.message ? e.message : e));
        });
        $('say-form').onsubmit = function () {
            var input = $('say-input');
            var message = input.value;
            if (message) {
                client.say(current, message, function (reply) {
                    if (reply.error) {
                        addLine('error', null, reply.error);
                    }
                });
                input.value = '';
            }
            return false;
        };
        text($('members-room'), current);
        showState();
        client.connect(function () {
            var inRoom = false;
            for (var i = 0; i < client.rooms.length; i++) {
                inRoom = inRoom || client.rooms[i] === current;
            }
            if (!inRoom) {
                join(current)();
            }
        });
        membersTimer = setInterval(refreshMembers, 2000);
    }

    var script = document.createElement('script');
    script.src = '/public/javascript/ActionheroWebsocketClient' + (/[?&]min=1/.test(query) ? '.min' : '') + '.js';
    script.onload = start;
    script.onerror = function () {
        addLine('error', null, 'could not load the client library');
    };
    document.getElementsByTagName('head')[0].appendChild(script);
    window.chatStopMembers = function () {
        clearInterval(membersTimer);
    };
})();
