// One suite at a time: every channels instance a suite starts consumes the shared send-commands topic, and one that
// does not know another suite's channel reports that suite's commands failed ("channel does not exist").
module.exports = { ...require("../../jest.preset.js"), displayName: "channels", rootDir: __dirname, maxWorkers: 1 };
