// Nexus dashboard: live updates of the channel cards, the alert banner, the dead-letter count
// and running batches, from the server-sent events of /nexus/events. No framework, no build:
// the server formats every text; this script only puts it in place (textContent, never HTML).
(function () {
  "use strict";

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function updateCards(cards) {
    document.querySelectorAll("article.card[data-channel]").forEach(function (card) {
      var data = cards[card.dataset.channel];
      if (!data) {
        return;
      }
      card.dataset.state = data.state;
      Object.keys(data.fields).forEach(function (name) {
        setText(card.querySelector('[data-field="' + name + '"]'), data.fields[name]);
      });
      var meter = card.querySelector('[data-meter="bucket"]');
      if (meter) {
        meter.value = data.bucket === null ? 0 : data.bucket;
      }
    });
  }

  function updateAlerts(alerts) {
    var banner = document.getElementById("alerts");
    if (!banner) {
      return;
    }
    var lines = alerts.map(function (alert) {
      var line = document.createElement("p");
      line.className = "alert alert-" + alert.level;
      line.dataset.channel = alert.channel;
      var label = document.createElement("strong");
      label.textContent = alert.level === "error" ? "Error:" : "Warning:";
      line.appendChild(label);
      line.appendChild(document.createTextNode(" " + alert.text));
      return line;
    });
    var same = banner.children.length === lines.length && lines.every(function (line, i) {
      return banner.children[i].textContent === line.textContent && banner.children[i].className === line.className;
    });
    if (!same) {
      banner.replaceChildren.apply(banner, lines);
    }
  }

  function updateBatches(batches) {
    Object.keys(batches).forEach(function (id) {
      var row = document.querySelector('tr[data-batch="' + CSS.escape(id) + '"]');
      if (!row) {
        return;
      }
      var batch = batches[id];
      var bar = row.querySelector('[data-batch-field="progress"]');
      if (bar) {
        bar.max = Math.max(batch.total, 1);
        bar.value = batch.done;
      }
      setText(row.querySelector('[data-batch-field="text"]'), batch.text);
      setText(row.querySelector('[data-batch-field="status"]'), batch.status);
    });
  }

  function connect() {
    var url = document.body.dataset.live;
    var status = document.getElementById("live-status");
    if (!url || !window.EventSource) {
      setText(status, "Live updates: not available in this browser; reload to refresh.");
      return;
    }
    var source = new EventSource(url);
    var quiet = null; // a stream ends every few seconds and reconnects: only a long gap is news
    source.addEventListener("overview", function (event) {
      if (quiet) {
        clearTimeout(quiet);
        quiet = null;
      }
      var data = JSON.parse(event.data);
      updateCards(data.cards);
      updateAlerts(data.alerts);
      updateBatches(data.batches);
      document.querySelectorAll('[data-live-total="dead_letters"]').forEach(function (badge) {
        setText(badge, String(data.dead_letters));
      });
      if (status) {
        status.dataset.state = "live";
        setText(status, "Live updates: on, last at " + data.at);
      }
    });
    source.addEventListener("error", function () {
      if (!status) {
        return;
      }
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the session ended, or the server is gone): say so rather than go stale quietly.
        status.dataset.state = "stopped";
        setText(status, "Live updates: stopped. Reload the page (you may need to sign in again).");
      } else if (!quiet) {
        quiet = setTimeout(function () {
          status.dataset.state = "reconnecting";
          setText(status, "Live updates: reconnecting…");
        }, 3000);
      }
    });
  }

  function selectAll() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var form = box.closest("form");
        form.querySelectorAll('input[type="checkbox"][name="id"]:not(:disabled)').forEach(function (row) {
          row.checked = box.checked;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    selectAll();
    connect();
  });
})();
