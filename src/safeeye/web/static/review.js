// Keys for the review pages (the legend on each page lists them). The pages are plain forms and
// links: without this script everything still works by mouse and Tab. No key acts while the
// person is typing in a field, or with Ctrl, Alt or Cmd held.
(function () {
  "use strict";

  var root = document.querySelector("[data-review]");
  if (!root) {
    return;
  }
  var page = root.getAttribute("data-review");
  var rows = Array.prototype.slice.call(root.querySelectorAll(".review-row"));
  var current = -1;

  function typing(target) {
    if (!target || !target.tagName) {
      return false;
    }
    var tag = target.tagName.toUpperCase();
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || target.isContentEditable;
  }

  function button(key) {
    return root.querySelector('button[data-key="' + key + '"]');
  }

  // Each sharp picture is asked for anew (the server records every look). On a match's page
  // the least that decides comes first: the faces (step 1), then the whole picture and the
  // frames (step 2), one press each.
  function reveal(scope) {
    var waiting = Array.prototype.slice.call(scope.querySelectorAll("img[data-reveal]"));
    var step = Math.min.apply(
      null,
      waiting.map(function (img) {
        return Number(img.getAttribute("data-step") || 1);
      })
    );
    waiting.forEach(function (img) {
      if (Number(img.getAttribute("data-step") || 1) === step) {
        img.src = img.getAttribute("data-reveal");
        img.removeAttribute("data-reveal");
        img.classList.add("revealed");
      }
    });
    var link = document.getElementById("reveal");
    if (link && !root.querySelector("img[data-reveal]")) {
      link.hidden = true;
    }
  }

  function focusRow(index) {
    if (!rows.length) {
      return;
    }
    index = Math.max(0, Math.min(rows.length - 1, index));
    if (current >= 0 && rows[current]) {
      rows[current].classList.remove("current");
    }
    current = index;
    rows[current].classList.add("current");
    rows[current].focus();
  }

  function checkbox(row) {
    return row ? row.querySelector('input[type="checkbox"]') : null;
  }

  // A decision on the queue page acts on the checked rows, or on the focused row if none is.
  function pickFocusedIfNone() {
    if (root.querySelector('.review-row input[type="checkbox"]:checked')) {
      return;
    }
    var box = checkbox(rows[current]);
    if (box) {
      box.checked = true;
    }
  }

  function decide(key) {
    var target = button(key);
    if (!target) {
      return;
    }
    if (page === "queue") {
      pickFocusedIfNone();
    }
    target.click();
  }

  function chooseReason() {
    var select = root.querySelector(page === "queue" ? "#bulk-reason" : "#reason");
    if (!select) {
      return;
    }
    if (page === "queue") {
      pickFocusedIfNone();
    }
    select.focus();
  }

  // In the reason list, Enter (with a reason chosen) rejects.
  Array.prototype.forEach.call(root.querySelectorAll("#bulk-reason, #reason"), function (select) {
    select.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && select.value) {
        event.preventDefault();
        var reject = button("r");
        if (reject) {
          reject.click();
        }
      }
    });
  });

  var revealLink = document.getElementById("reveal");
  if (revealLink) {
    revealLink.addEventListener("click", function (event) {
      event.preventDefault();
      reveal(root);
    });
  }

  rows.forEach(function (row, index) {
    row.addEventListener("focusin", function () {
      if (current !== index) {
        if (current >= 0 && rows[current]) {
          rows[current].classList.remove("current");
        }
        current = index;
        row.classList.add("current");
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) {
      return;
    }
    var key = event.key;
    var handled = true;
    if (page === "queue" && key === "j") {
      focusRow(current + 1);
    } else if (page === "queue" && key === "k") {
      focusRow(current < 0 ? 0 : current - 1);
    } else if (page === "queue" && key === "x") {
      var box = checkbox(rows[current]);
      if (box) {
        box.checked = !box.checked;
      }
    } else if (
      page === "queue" &&
      key === "Enter" &&
      rows[current] &&
      (event.target === rows[current] || event.target === document.body)
    ) {
      window.location.assign(rows[current].getAttribute("data-href"));
    } else if (key === "v") {
      if (page === "queue") {
        if (rows[current]) {
          reveal(rows[current]);
        }
      } else {
        reveal(root);
      }
    } else if (key === "c" || key === "e") {
      decide(key);
    } else if (key === "r") {
      chooseReason();
    } else if (page === "match" && key === "j") {
      decide("j");
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
    }
  });

  if (page === "queue" && rows.length) {
    focusRow(0);
  }
})();
