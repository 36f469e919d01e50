// Types for the dev dependency parse-prometheus-text-format (it ships none): text → metric families.
declare module "parse-prometheus-text-format" {
  const parse: (text: string) => unknown[];
  export default parse;
}
