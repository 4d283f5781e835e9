// Nubo's small progressive enhancements; every page works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Destructive actions: <form data-confirm="Question?"> (or the submit button's own
  // data-confirm, for a form with several actions) asks before it submits.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Phone width: the Menu button shows and hides the navigation.
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".nubo-menu-toggle");
    var nav = document.getElementById("nubo-nav");
    if (!toggle || !nav) {
      return;
    }
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("nubo-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });
})();
