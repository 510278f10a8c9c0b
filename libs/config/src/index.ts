export { ConfigError, loadConfig, loadConfigOrExit } from "./load-config";
export { bool, brokerList, grpcAddress, logLevel, mongoUrl, optionalUrl, port, positiveInt, serviceBaseSchema } from "./fields";
