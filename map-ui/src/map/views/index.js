// Registers the workbench's views in navigation order: one module per view, each calling
// registerView (../views.js) when imported.
import './people.js';
import './reports.js';
