// Imaging Advisor: focus and announcements after htmx swaps, copy and print buttons.
// Everything here is an enhancement: the pages work with JavaScript off.
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("announcer");
    if (region) {
      region.textContent = "";
      window.setTimeout(function () { region.textContent = text; }, 50);
    }
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        navigator.clipboard.writeText(source.value).then(function () {
          button.textContent = "Copied";
          announce("Summary copied");
        });
      });
    });
    // "None of these" stands alone: ticking it clears the others, ticking another clears it.
    // Without JavaScript the server says so if both are sent.
    root.querySelectorAll("[data-exclusive-group]").forEach(function (group) {
      group.addEventListener("change", function (event) {
        var box = event.target;
        if (!box.checked) { return; }
        group.querySelectorAll("input[type=checkbox]").forEach(function (other) {
          if (other !== box && (box.hasAttribute("data-exclusive") || other.hasAttribute("data-exclusive"))) {
            other.checked = false;
          }
        });
      });
    });
    root.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });

  // A citation points into the collapsed reference list: open it so the link lands somewhere.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.cite[href^='#ref-']");
    var target = link && document.querySelector(link.getAttribute("href"));
    var details = target && target.closest("details");
    if (details) { details.open = true; }
  });

  // After a wizard swap, move focus to the new step's heading and announce it, so keyboard
  // and screen-reader users land where the content changed. Other swaps (the feedback form)
  // leave focus where the user is.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.elt;
    enhance(target);
    if (!event.detail.target || event.detail.target.id !== "wizard") { return; }
    // A choice low on a phone screen leaves the page scrolled: bring the top of the new step
    // back into view at once (not smoothly), so an urgency banner at its top is seen first.
    var wizard = document.getElementById("wizard");
    if (wizard && wizard.getBoundingClientRect().top < 0) { wizard.scrollIntoView({ block: "start", behavior: "instant" }); }
    var heading = document.querySelector("#wizard [data-focus]");
    if (heading) {
      heading.focus({ preventScroll: true });
      announce(heading.textContent.trim());
    }
  });
})();
