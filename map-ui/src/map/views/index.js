// Registers the workbench's views in navigation order: one module per view, each calling
// registerView (../views.js) when imported.
import './plans.js';
import './outlets.js';
import './people.js';
import './reviews.js';
import './reports.js';
import './settings.js';
