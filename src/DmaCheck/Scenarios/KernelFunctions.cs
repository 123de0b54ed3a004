namespace DmaCheck.Scenarios;

/// <summary>The kernel functions a scenario statement may call (the call catalogue's entries), for "did you mean" on a typo.</summary>
public static class KernelFunctions
{
    /// <summary>Every call of the catalogue (Scenarios/Calls/), in its order.</summary>
    public static IReadOnlyList<string> Known { get; } = [.. CallCatalogue.Calls.Select(c => c.Name)];

    /// <summary>
    /// Real kernel functions a DMA driver calls that dmacheck knows it does not model, each with the mechanism it would
    /// need. A scenario may call one: the statement binds, and a run that reaches it stops as "not modelled: ..." (exit
    /// 3), so a scenario that needs the mechanism is inconclusive, never judged without it. Barriers (dma_wmb, wmb) are
    /// not here: the model never reorders accesses, so code that has them and code that lacks them behave alike
    /// (docs/semantics.md, "Assumptions").
    /// </summary>
    public static IReadOnlyDictionary<string, string> NotModelled { get; } = Table(
        (["vzalloc", "vmalloc_user"], "vmalloc variants that clear or map to user space (use vmalloc and a write)"),
        (["flush_cache_vmap", "flush_cache_vunmap", "flush_cache_all", "flush_cache_page", "flush_cache_range", "flush_icache_range"],
            "architecture cache maintenance a driver calls directly (vmalloc, vmap and their unmaps do flush_cache_vmap/vunmap themselves)"),
        (["dma_alloc_noncoherent", "dma_free_noncoherent", "dma_alloc_pages", "dma_free_pages", "dma_mmap_pages", "dma_alloc_noncontiguous",
          "dma_free_noncontiguous", "dma_vmap_noncontiguous", "dma_vunmap_noncontiguous", "dma_mmap_noncontiguous"],
            "the non-coherent allocation API (dma_alloc_pages and friends, kernel/dma/mapping.c)"),
        (["dma_alloc_wc", "dma_free_wc", "dma_mmap_wc"], "the write-combine wrappers (use dma_alloc_attrs with DMA_ATTR_WRITE_COMBINE)"),
        (["ioremap", "ioremap_wc", "ioremap_cache", "ioremap_np", "iounmap", "devm_ioremap", "devm_ioremap_wc", "devm_ioremap_resource",
          "readl", "writel", "readl_relaxed", "writel_relaxed", "memcpy_toio", "memcpy_fromio"],
            "MMIO (device registers and ioremap mappings)"),
        (["devm_memremap", "devm_memunmap"], "device-managed memremap (use memremap and memunmap)"),
        (["of_reserved_mem_device_release", "of_reserved_mem_device_init_by_idx", "of_reserved_mem_device_init_by_name"],
            "reserved-memory pools other than of_reserved_mem_device_init of the device's own memory-region"),
        (["iommu_map", "iommu_unmap", "iommu_map_sg", "iommu_domain_alloc", "iommu_attach_device", "iommu_dma_map_page"],
            "an IOMMU and its IOVA space"),
        (["dma_buf_map_attachment", "dma_buf_unmap_attachment", "dma_buf_vmap", "dma_buf_begin_cpu_access", "dma_buf_end_cpu_access"],
            "dma-buf and its exporters' cache handling"),
        (["set_memory_wc", "set_memory_uc", "set_memory_nx", "set_memory_ro", "set_memory_valid", "set_memory_encrypted", "set_memory_decrypted",
          "set_direct_map_invalid_noflush", "set_direct_map_default_noflush"],
            "changing the linear map's attributes, or taking pages out of it"),
        (["remap_pfn_range", "vm_insert_page", "vm_iomap_memory", "io_remap_pfn_range"], "user mappings a driver makes itself (use dma_mmap_attrs)"),
        (["qcom_scm_pas_init_image", "qcom_scm_mem_protect_video_var", "qcom_scm_restore_sec_cfg"],
            "Qualcomm secure-world calls other than qcom_scm_assign_mem (and the argument buffers they hand to the secure world)"),
        (["cma_alloc", "cma_release", "dma_alloc_from_contiguous", "dma_release_from_contiguous"], "CMA areas a driver manages itself (only the default area, through dma_alloc_coherent, is modelled)"),
        (["dcache_clean_poc", "dcache_inval_poc", "dcache_clean_inval_poc", "__flush_dcache_area", "dmac_flush_range", "outer_flush_range", "arch_sync_dma_for_device",
          "arch_sync_dma_for_cpu", "arch_dma_prep_coherent"],
            "architecture cache maintenance called directly by a driver"));

    private static Dictionary<string, string> Table(params (string[] Names, string Mechanism)[] rows) =>
        rows.SelectMany(r => r.Names.Select(n => (n, r.Mechanism))).ToDictionary(r => r.n, r => r.Mechanism, StringComparer.Ordinal);

    /// <summary>The message for a call of a function the binder does not know: the nearest names, not all of them.</summary>
    public static string Unknown(string name)
    {
        var hint = Suggestions.DidYouMean(name, Known, 3) ?? "docs/scenario-language.md lists every function dmacheck models";
        return $"unknown or unmodelled kernel function '{name}' ({hint})";
    }
}
