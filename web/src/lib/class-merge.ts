/** Imported for its effect: from now on `cn` merges conflicting Tailwind classes (see `setClassMerger`). */
import { twMerge } from "tailwind-merge";
import { setClassMerger } from "./utils";

setClassMerger(twMerge);
