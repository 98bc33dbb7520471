export function Brand() {
  return (
    <span className="flex items-center gap-2 font-semibold tracking-tight">
      <img src="/favicon.svg" alt="" className="h-7 w-7" />
      Atrium
    </span>
  );
}
