using DmaCheck.Hardware;

namespace DmaCheck.Kernel;

/// <summary>
/// A kernel thread's stack (task_struct-&gt;stack): THREAD_SIZE bytes at <see cref="Va"/> over the frames
/// [<see cref="Pfn"/>, +<see cref="Pages"/>). With CONFIG_VMAP_STACK (arm64 and x86_64 defaults) it is a vmalloc area
/// (task_stack_vm_area), else pages of the linear map (32-bit arm before v5.19). <see cref="Used"/>: bytes of stack
/// buffers handed out, from the top down.
/// </summary>
public sealed record TaskStack(ulong Va, ulong Pfn, int Pages, bool Vmapped, ulong Used)
{
    public ulong Size => (ulong)Pages << PlatformLayout.PageShift;

    public bool ContainsPfn(ulong pfn) => pfn >= Pfn && pfn - Pfn < (ulong)Pages;
}

/// <summary>Kernel stacks (kernel/fork.c alloc_thread_stack_node, v5.10..v6.5) and buffers on them.</summary>
public static class Stacks
{
    /// <summary>
    /// THREAD_SIZE without KASAN: 16 KiB on arm64 (THREAD_SHIFT 14), x86_64 and 64-bit RISC-V (THREAD_SIZE_ORDER 2),
    /// 8 KiB on 32-bit arm and 32-bit MIPS with 4 KiB pages (THREAD_SIZE_ORDER 1).
    /// </summary>
    public static int ThreadPages(Arch arch) => arch is Arch.Arm32 or Arch.Mips32 or Arch.Ppc32 ? 2 : 4;

    /// <summary>
    /// A buffer of <paramref name="size"/> bytes (16-byte aligned) on <paramref name="agent"/>'s kernel stack, below
    /// the ones before it, from the top. The stack is made at the thread's first buffer, which is equivalent to making
    /// it when the thread was created: nothing else touches its pages. With CONFIG_VMAP_STACK,
    /// alloc_thread_stack_node → __vmalloc_node_range: order-0 pages mapped cacheable in vmalloc space; without it,
    /// alloc_pages of THREAD_SIZE_ORDER, reached through the linear map.
    /// </summary>
    public static KernelState Buffer(KernelState k, string agent, ulong size, List<HwOp> ops, out ulong va)
    {
        var layout = k.Layout;
        var pages = ThreadPages(layout.Arch);
        if (!k.Stacks.TryGetValue(agent, out var stack))
        {
            var vmapped = layout.Arch is not (Arch.Arm32 or Arch.Mips32 or Arch.Ppc32); // MIPS has no HAVE_ARCH_VMAP_STACK; RISC-V has it since v5.18
            var owner = $"the kernel stack of {agent}";
            ulong pfn;
            if (vmapped)
            {
                k = k.AllocPages(Gfp.GFP_KERNEL, 0, owner, ops, out pfn);
                for (var i = 1; i < pages; i++)
                {
                    k = k.AllocPages(Gfp.GFP_KERNEL, 0, owner, ops, out var next);
                    if (next != pfn + (ulong)i)
                    {
                        throw new NotModelledException($"the vmalloc'd stack of {agent} would get scattered pages (pfn 0x{next:x} after 0x{pfn + (ulong)i - 1:x}); only a contiguous stack is modelled");
                    }
                }

                k = k.Vmap(pfn, (ulong)pages, MemoryType.NormalWriteBack, owner, "alloc_thread_stack_node: __vmalloc_node_range (CONFIG_VMAP_STACK)", ops, out var stackVa);
                stack = new TaskStack(stackVa, pfn, pages, true, 0);
            }
            else
            {
                k = k.AllocPages(Gfp.GFP_KERNEL, 1, owner, ops, out pfn);
                stack = new TaskStack(layout.LinearAddress(pfn), pfn, pages, false, 0);
            }
        }

        var used = stack.Used + ((size + 15) & ~15UL);
        if (used > stack.Size / 2)
        {
            throw new NotModelledException($"stack buffers of {used} bytes on {agent}'s {stack.Size}-byte stack: the rest of the stack (frames, other locals) is not modelled; keep them under half of it");
        }

        va = stack.Va + stack.Size - used;
        return k with { Stacks = k.Stacks.SetItem(agent, stack with { Used = used }) };
    }
}
