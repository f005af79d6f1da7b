// Runs before the first paint (a blocking script in <head>, the only one): tells the CSS that scripts run,
// so the phone navigation starts collapsed behind its menu button instead of flashing open.
document.documentElement.classList.add("js");
